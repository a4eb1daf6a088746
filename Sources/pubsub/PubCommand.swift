import ArgumentParser
import Foundation
import PubSubClient

/// `pubsub pub TOPIC MESSAGE` and `pubsub pub TOPIC -` (SPEC 8), on the Swift client.
struct Pub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish a message to a topic, or one message per line of standard input.",
        discussion: """
            MESSAGE is sent as JSON when it is JSON (an object, an array, a number, true, false, \
            a "quoted string"), and as a JSON string otherwise. An object with a string "id" and \
            a "payload" names the message's id.

            With '-', every non-empty line of standard input is one message, published in order \
            and pipelined (up to --window waiting for their ack at once); the acks are counted \
            and the summary goes to stderr (with --json, to stdout as JSON). A refused line is \
            reported with its line number and the others go on; the exit status is then 1.

            Examples:
              pubsub pub orders '{"total":12}'
              pubsub pub orders hello --json
              tail -f app.log | pubsub pub logs -

            \(clientExitCodes)
            """
    )

    @OptionGroup var server: ServerOptions

    @Argument(help: "The topic to publish to.")
    var topic: String

    @Argument(help: "The message, or '-' for one message per line of standard input.")
    var message: String

    @Option(help: "With '-': how many publishes may wait for their ack at once.")
    var window = 256

    func validate() throws {
        guard (1...10_000).contains(window) else { throw ValidationError("--window must be between 1 and 10000") }
    }

    /// JSON as it is; anything else as a JSON string.
    static func payload(_ text: String) -> RawJSON {
        if let raw = try? RawJSON(text) { return raw }
        // Encoding a String cannot fail.
        return try! RawJSON(encoding: text)
    }

    func run() async throws {
        let client = try server.makeClient()
        do {
            try await client.connect()
            if message == "-" {
                try await publishLines(client)
            } else {
                let receipt = try await client.publish(topic, Self.payload(message))
                if server.json {
                    print(Self.json(receipt))
                } else {
                    var line = "published to '\(receipt.topic)' as seq \(receipt.seq) (message id \(receipt.messageID)"
                    if let delivered = receipt.delivered { line += ", delivered to \(delivered)" }
                    print(line + ")")
                }
            }
        } catch let error as PubSubClientError {
            throw server.failure(error)
        }
    }

    private func publishLines(_ client: PubSubClient) async throws {
        var inFlight: [(line: Int, publish: PendingPublish)] = []
        var published = 0
        var refused = 0
        func settle(_ item: (line: Int, publish: PendingPublish)) async throws {
            do {
                _ = try await item.publish.receipt()
                published += 1
            } catch PubSubClientError.server(let code, let message) {
                refused += 1
                printError("line \(item.line): \(message) (\(code))")
            } catch {
                printError("\(published) published before the failure")
                throw error
            }
        }
        var number = 0
        while let line = readLine(strippingNewline: true) {
            number += 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            inFlight.append((number, try await client.startPublish(topic, Self.payload(line))))
            if inFlight.count >= window { try await settle(inFlight.removeFirst()) }
        }
        for item in inFlight { try await settle(item) }
        if server.json {
            print(#"{"topic":\#(Self.quoted(topic)),"published":\#(published),"refused":\#(refused)}"#)
        } else {
            FileHandle.standardError.write(Data("published \(published) messages to '\(topic)'\(refused > 0 ? ", \(refused) refused" : "")\n".utf8))
        }
        if refused > 0 { throw ExitCode(1) }
    }

    static func json(_ receipt: PublishReceipt) -> String {
        var text = #"{"topic":\#(quoted(receipt.topic)),"message_id":\#(quoted(receipt.messageID)),"seq":\#(receipt.seq)"#
        if let delivered = receipt.delivered { text += #","delivered":\#(delivered)"# }
        if let dropped = receipt.dropped { text += #","dropped":\#(dropped)"# }
        return text + "}"
    }

    static func quoted(_ text: String) -> String {
        (try? RawJSON(encoding: text))?.text ?? "\"\""
    }
}
