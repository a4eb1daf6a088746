import ArgumentParser
import Foundation
import PubSubClient
import Synchronization

/// `pubsub sub TOPIC… [--last-n N | --since SEQ --epoch E]` (SPEC 8): JSON lines of events,
/// reconnecting and recovering through the Swift client.
struct Sub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Subscribe to topics and print their events as JSON lines.",
        discussion: """
            Each event is one line on stdout (--json changes nothing), the server's event frame \
            with the topic's epoch:

              {"type":"event","topic":"orders","seq":42,"epoch":"…","message":{…},"ts":"…"}

            A lost connection is reopened with backoff, and each topic resubscribed from the last \
            seq printed, so no event is printed twice or skipped. Messages the server can no \
            longer bring back (its history is too short, or the topic's epoch changed: the \
            server restarted, the topic was recreated), and those dropped while stdout was read \
            too slowly (over 100,000 events waiting), are declared by a line on stdout and on \
            stderr:

              {"type":"gap","topic":"orders","epoch":"…","from_seq":43,"to_seq":57}

            with "previous_epoch" and "previous_seq" when the epoch changed (everything after \
            previous_seq in it is lost; from_seq/to_seq are then the new epoch's lost seqs, if any).

            Runs until interrupted, or until --count events; ends with status 1 when the server \
            refuses a subscription or deletes its topic.

            Examples:
              pubsub sub orders
              pubsub sub orders payments --last-n 10
              pubsub sub orders --since 41 --epoch 72dfd2c4d6cd8c2e | jq .message.payload

            \(clientExitCodes)
            """
    )

    @OptionGroup var server: ServerOptions

    @Argument(help: "The topics (or patterns such as orders.* and orders.>) to subscribe to.")
    var topics: [String] = []

    @Option(name: .customLong("last-n"), help: "Print up to N retained messages of each topic first.")
    var lastN: Int?

    @Option(help: "Print every retained message after this seq first (one topic only).")
    var since: Int?

    @Option(help: "With --since: the topic's epoch that seq belongs to.")
    var epoch: String?

    @Option(help: "Exit after this many events.")
    var count: Int?

    func validate() throws {
        guard !topics.isEmpty else { throw ValidationError("name at least one topic") }
        if lastN != nil, since != nil { throw ValidationError("--last-n and --since exclude each other") }
        if epoch != nil, since == nil { throw ValidationError("--epoch goes with --since") }
        if since != nil, topics.count > 1 { throw ValidationError("--since names a seq of one topic: subscribe to one topic") }
        if let lastN, lastN < 0 { throw ValidationError("--last-n must be 0 or more") }
        if let since, since < 0 { throw ValidationError("--since must be 0 or more") }
        if let count, count < 1 { throw ValidationError("--count must be 1 or more") }
    }

    private var start: SubscriptionStart {
        if let since { return .since(since, epoch: epoch) }
        if let lastN { return .lastN(lastN) }
        return .latest
    }

    func run() async throws {
        let client = try server.makeClient()
        let output = LineWriter()
        let remaining = count.map { Countdown($0) }
        do {
            try await client.connect()
            var subscriptions: [PubSubSubscription] = []
            for topic in topics { subscriptions.append(try await client.subscribe(topic, from: start)) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for subscription in subscriptions {
                    group.addTask {
                        for try await element in subscription {
                            switch element {
                            case .event(let event):
                                output.out(Self.line(event))
                                if let remaining, remaining.take() { return }
                            case .gap(let gap):
                                let line = Self.line(gap)
                                output.out(line)
                                output.err(line)
                            }
                        }
                    }
                }
                // The first to end: --count reached (or a subscription refused, which throws).
                _ = try await group.next()
                group.cancelAll()
            }
            await client.close()
        } catch let error as PubSubClientError {
            await client.close()
            throw server.failure(error)
        }
    }

    static func line(_ event: PubSubEvent) -> String {
        var text = #"{"type":"event","topic":\#(Pub.quoted(event.topic)),"seq":\#(event.seq)"#
        if let epoch = event.epoch { text += #","epoch":\#(Pub.quoted(epoch))"# }
        text += #","message":{"id":\#(Pub.quoted(event.id)),"payload":\#(event.payload.text)}"#
        return text + #","ts":\#(Pub.quoted(event.timestamp))}"#
    }

    static func line(_ gap: PubSubGap) -> String {
        var text = #"{"type":"gap","topic":\#(Pub.quoted(gap.topic))"#
        if let epoch = gap.epoch { text += #","epoch":\#(Pub.quoted(epoch))"# }
        if let missing = gap.missing { text += #","from_seq":\#(missing.lowerBound),"to_seq":\#(missing.upperBound)"# }
        if let previous = gap.previousEpoch { text += #","previous_epoch":\#(Pub.quoted(previous))"# }
        if let seq = gap.previousSeq { text += #","previous_seq":\#(seq)"# }
        return text + "}"
    }
}

/// --count across the subscriptions' tasks.
private final class Countdown: Sendable {
    private let left: Mutex<Int>

    init(_ value: Int) { left = Mutex(value) }

    /// Counts one event; true when it was the last one wanted.
    func take() -> Bool {
        left.withLock { value in
            value -= 1
            return value <= 0
        }
    }
}
