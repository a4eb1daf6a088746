import ArgumentParser
import Foundation
import PubSubAuth
import PubSubCore
import PubSubServer

/// `pubsub token`: a client token for development, as `centrifugo gentoken` makes one.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a client token (JWT, HS256) for a server started with --auth token --jwt-secret.",
        discussion: """
            For development and tests: in production your backend signs tokens for its users. \
            Example: pubsub token --secret "$SECRET" --sub alice --subscribe 'orders.>' --publish orders.eu --ttl 3600
            """
    )

    @Option(help: "The server's --jwt-secret (at least 32 bytes). (env PUBSUB_JWT_SECRET)") var secret: String?
    @Option(help: "The user: the token's sub claim.") var sub: String?
    @Option(parsing: .upToNextOption, help: "Topics or patterns (orders, orders.*, orders.>, >) it may subscribe to.")
    var subscribe: [String] = []
    @Option(parsing: .upToNextOption, help: "Topics or patterns it may publish to.") var publish: [String] = []
    @Flag(help: "Create and delete topics, list them, read stats.") var admin = false
    @Option(help: "Seconds until it expires.") var ttl: Int = 3_600

    func run() async throws {
        guard let secret = secret ?? ProcessInfo.processInfo.environment["PUBSUB_JWT_SECRET"], secret.utf8.count >= 32 else {
            throw ValidationError("--secret (or PUBSUB_JWT_SECRET) of at least 32 bytes is required")
        }
        guard ttl > 0 else { throw ValidationError("--ttl must be at least 1 second") }
        for pattern in subscribe + publish where TopicPattern(pattern) == nil {
            throw ValidationError("'\(pattern)' is not a topic name or pattern (orders, orders.*, orders.>, >)")
        }
        let claims = Authenticator.Claims(
            sub: sub, expires: Date().addingTimeInterval(TimeInterval(ttl)), subscribe: subscribe.isEmpty ? nil : subscribe,
            publish: publish.isEmpty ? nil : publish, admin: admin ? true : nil
        )
        print(try await Authenticator.mint(claims, secret: secret))
    }
}
