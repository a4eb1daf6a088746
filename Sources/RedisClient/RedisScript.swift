import NIOConcurrencyHelpers
import NIOCore

/// A Lua script run with `EVALSHA`: the server keeps scripts by their SHA-1, so the body is sent
/// once (`SCRIPT LOAD`, which answers the SHA-1), and again only when the server says it does
/// not know it (`NOSCRIPT`: it restarted, or `SCRIPT FLUSH` ran).
///
///     let next = RedisScript("return redis.call('INCR', KEYS[1])")
///     let value = try await connection.run(next, keys: ["counter"], arguments: []).get()
public final class RedisScript: Sendable {
    public let source: String
    private let sha = NIOLockedValueBox<String?>(nil)

    public init(_ source: String) {
        self.source = source
    }

    var loadedSHA: String? { sha.withLockedValue { $0 } }
    func remember(_ value: String) { sha.withLockedValue { $0 = value } }
}

extension RedisConnection {
    /// Runs `script` (loading it first when needed); an error reply fails the future with
    /// `RESPError.server`.
    public func run(_ script: RedisScript, keys: [RESPArgument], arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        guard let sha = script.loadedSHA else { return load(script, keys: keys, arguments: arguments) }
        return send(["EVALSHA", .string(sha), .integer(Int64(keys.count))] + keys + arguments).flatMap { value in
            if case .error(let message) = value, message.hasPrefix("NOSCRIPT") {
                return self.load(script, keys: keys, arguments: arguments)
            }
            return self.eventLoop.makeSucceededFuture(value)
        }.flatMapThrowing { value in
            if case .error(let message) = value { throw RESPError.server(message) }
            return value
        }
    }

    private func load(_ script: RedisScript, keys: [RESPArgument], arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        command(["SCRIPT", "LOAD", .string(script.source)]).flatMap { value in
            guard let sha = value.string else {
                return self.eventLoop.makeFailedFuture(RESPError.malformed("SCRIPT LOAD answered \(value)"))
            }
            script.remember(sha)
            return self.command(["EVALSHA", .string(sha), .integer(Int64(keys.count))] + keys + arguments)
        }
    }
}
