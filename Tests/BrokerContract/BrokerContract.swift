import NIOConcurrencyHelpers
import NIOCore
import PubSubCore
import Testing

/// What every engine guarantees to the node, checked through `any Broker` alone. An engine's
/// test suite runs every check against engines its `make` builds:
///
///     @Test(arguments: BrokerContract.checks)
///     func memory(_ check: BrokerContract.Check) async throws {
///         try await check.run { MemoryBroker(configuration: $0) }
///     }
public enum BrokerContract {
    public typealias MakeEngine = @Sendable (BrokerConfiguration) async throws -> any Broker

    public struct Check: Sendable, CustomStringConvertible {
        public let description: String
        let body: @Sendable (MakeEngine) async throws -> Void

        public func run(_ make: @escaping MakeEngine) async throws { try await body(make) }
    }

    public static let checks: [Check] = [
        Check(description: "topic lifecycle and its errors", body: lifecycle),
        Check(description: "topic names are validated", body: names),
        Check(description: "publish assigns consecutive seqs and keeps ids and ts", body: publishReceipts),
        Check(description: "publish to a missing topic, with and without auto-creation", body: missingTopics),
        Check(description: "history by last n and after a seq, with its position", body: history),
        Check(description: "a subscribed sink gets every publication in order, then none once unsubscribed", body: sinkDelivery),
        Check(description: "history read after subscribing closes the gap with the sink", body: subscribeThenHistory),
        Check(description: "deletion reaches the sink after its last publication; a new topic starts again", body: deletion),
        Check(description: "concurrent publishers keep per-topic order", body: concurrentOrder),
        Check(description: "the publish cache follows deletions and re-creations", body: publishCache),
        Check(description: "published count survives deletion", body: publishedCount),
        Check(description: "max topics", body: maxTopics),
        Check(description: "presence lists a topic's entries and hands its diffs to the sink", body: presence),
        Check(description: "watched prefixes announce topics the node does not follow", body: watching),
    ]

    // MARK: helpers

    static func message(_ text: String, id: String? = nil) -> MessageInput {
        MessageInput(id: id, payload: ByteBuffer(string: "\"\(text)\""))
    }

    static func publish(_ broker: any Broker, _ topic: String, _ texts: [String], now: Int64? = nil) async throws(PubSubError) -> [PublishReceipt] {
        var messages = texts.map { message($0) }
        var cache = PublishCache()
        cache.now = now
        return try await publish(broker, topic, &messages, cache: &cache)
    }

    static func publish(
        _ broker: any Broker, _ topic: String, _ messages: inout [MessageInput], cache: inout PublishCache
    ) async throws(PubSubError) -> [PublishReceipt] {
        var receipts: [PublishReceipt] = []
        switch broker.publish(topic: topic, messages: &messages, cache: &cache, receipts: &receipts) {
        case .now(let failure):
            if let failure { throw failure }
            return receipts
        case .later(let future):
            let result = try await BrokerAnswer.later(future).get()
            if let failure = result.failure { throw failure }
            return result.receipts
        }
    }

    public static func expectError(_ code: ErrorCode, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
        do {
            try await body()
            Issue.record("expected \(code.rawValue)", sourceLocation: sourceLocation)
        } catch {
            #expect((error as? PubSubError)?.code == code, "\(error)", sourceLocation: sourceLocation)
        }
    }

    /// Waits (a bounded while) until `condition` holds: an engine behind the network hands
    /// publications over from its own thread, a moment after the publish answered.
    static func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }

    // MARK: checks

    static func lifecycle(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration())
        let created = try await broker.createTopic("t").get()
        #expect(created.name == "t" && created.seq == 0 && created.messageCount == 0 && !created.epoch.isEmpty)
        await expectError(.topicExists) { _ = try await broker.createTopic("t").get() }
        _ = try await broker.createTopic("a").get()
        #expect(try await broker.topics().get().map(\.name) == ["a", "t"])
        #expect(try await broker.topic("t").get().epoch == created.epoch)
        #expect(try await broker.deleteTopic("t").get().name == "t")
        await expectError(.topicNotFound) { _ = try await broker.deleteTopic("t").get() }
        await expectError(.topicNotFound) { _ = try await broker.topic("t").get() }
        #expect(try await broker.topics().get().map(\.name) == ["a"])
    }

    static func names(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration(autoCreateTopics: true))
        for bad in ["", "with space", "ünïcode", String(repeating: "z", count: 256)] {
            await expectError(.badRequest) { _ = try await broker.createTopic(bad).get() }
            await expectError(.badRequest) { _ = try await publish(broker, bad, ["x"]) }
        }
    }

    static func publishReceipts(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration())
        _ = try await broker.createTopic("t").get()
        var messages = [message("a", id: "mine"), message("b"), message("c")]
        var cache = PublishCache()
        cache.now = 1_700_000_000_123
        let receipts = try await publish(broker, "t", &messages, cache: &cache)
        #expect(messages.isEmpty, "the messages are consumed")
        #expect(receipts.map(\.seq) == [1, 2, 3])
        #expect(receipts.allSatisfy { $0.topic == "t" && $0.timestampMillis == 1_700_000_000_123 })
        #expect(receipts[0].messageID.description == "mine")
        #expect(Set(receipts.map(\.messageID.description)).count == 3, "generated ids are distinct")
        let stored = try await broker.history(topic: "t", .last(nil)).get()
        #expect(stored.publications.map { String(buffer: $0.payload) } == ["\"a\"", "\"b\"", "\"c\""])
        #expect(stored.publications.map(\.id.description) == receipts.map(\.messageID.description))
        #expect(try await broker.topic("t").get().messageCount == 3)
    }

    static func missingTopics(_ make: MakeEngine) async throws {
        let strict = try await make(BrokerConfiguration(autoCreateTopics: false))
        await expectError(.topicNotFound) { _ = try await publish(strict, "nope", ["x"]) }
        await expectError(.topicNotFound) { _ = try await strict.history(topic: "nope", .last(nil)).get() }
        await expectError(.topicNotFound) { _ = try await strict.subscribe(topic: "nope", sink: RecordingSink()).get() }
        #expect(try await strict.topics().get().isEmpty)
        let lenient = try await make(BrokerConfiguration(autoCreateTopics: true))
        #expect(try await publish(lenient, "auto", ["x"]).map(\.seq) == [1])
        _ = try await lenient.subscribe(topic: "auto2", sink: RecordingSink()).get()
        #expect(try await lenient.topics().get().map(\.name) == ["auto", "auto2"])
    }

    static func history(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration(historySize: 5))
        let topic = try await broker.createTopic("t").get()
        _ = try await publish(broker, "t", (1...8).map(String.init))
        let all = try await broker.history(topic: "t", .last(nil)).get()
        #expect(all.publications.map(\.seq) == [4, 5, 6, 7, 8], "the newest historySize are kept")
        #expect(all.seq == 8 && all.epoch == topic.epoch)
        #expect(try await broker.history(topic: "t", .last(2)).get().publications.map(\.seq) == [7, 8])
        #expect(try await broker.history(topic: "t", .last(0)).get().publications.isEmpty)
        #expect(try await broker.history(topic: "t", .last(50)).get().publications.count == 5)
        #expect(try await broker.history(topic: "t", .after(6)).get().publications.map(\.seq) == [7, 8])
        #expect(try await broker.history(topic: "t", .after(1)).get().publications.map(\.seq) == [4, 5, 6, 7, 8])
        #expect(try await broker.history(topic: "t", .after(8)).get().publications.isEmpty)
        #expect(try await broker.history(topic: "t", .after(99)).get().publications.isEmpty)
        await expectError(.badRequest) { _ = try await broker.history(topic: "t", .last(-1)).get() }
        let none = try await make(BrokerConfiguration(historySize: 0))
        _ = try await none.createTopic("t").get()
        _ = try await publish(none, "t", ["x"])
        let empty = try await none.history(topic: "t", .last(nil)).get()
        #expect(empty.publications.isEmpty && empty.seq == 1)
    }

    static func sinkDelivery(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration())
        _ = try await broker.createTopic("t").get()
        _ = try await publish(broker, "t", ["before"])
        let sink = RecordingSink()
        _ = try await broker.subscribe(topic: "t", sink: sink).get()
        _ = try await publish(broker, "t", ["a", "b"])
        _ = try await publish(broker, "t", ["c"])
        try await eventually { sink.seqs.count >= 3 }
        #expect(sink.seqs == [2, 3, 4])
        #expect(sink.payloads == ["\"a\"", "\"b\"", "\"c\""])
        // A sink that is no longer the topic's is ignored on unsubscribe.
        let stale = RecordingSink()
        broker.unsubscribe(topic: "t", sink: stale)
        _ = try await publish(broker, "t", ["d"])
        try await eventually { sink.seqs.count >= 4 }
        #expect(sink.seqs == [2, 3, 4, 5])
        broker.unsubscribe(topic: "t", sink: sink)
        // Unsubscribing is asynchronous for some engines: a history read orders after it.
        _ = try await broker.history(topic: "t", .last(0)).get()
        try await Task.sleep(for: .milliseconds(50))
        _ = try await publish(broker, "t", ["e"])
        try await Task.sleep(for: .milliseconds(50))
        #expect(sink.seqs == [2, 3, 4, 5])
    }

    static func subscribeThenHistory(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration(historySize: 10_000))
        _ = try await broker.createTopic("t").get()
        let total: UInt64 = 2_000
        let publishing = Task {
            for _ in 0..<(total / 2) { _ = try? await publish(broker, "t", ["m", "m"]) }
        }
        // Subscribed while the publisher is under way.
        for _ in 0..<500 where try await broker.topic("t").get().seq < 20 { try await Task.sleep(for: .milliseconds(1)) }
        let sink = RecordingSink()
        _ = try await broker.subscribe(topic: "t", sink: sink).get()
        let history = try await broker.history(topic: "t", .last(nil)).get()
        await publishing.value
        // Everything up to the history's position is in the history; the sink has every
        // publication after it (and perhaps some before), in order.
        #expect(history.publications.map(\.seq) == Array(1...history.seq))
        if history.seq < total {
            try await eventually { sink.seqs.last == total }
            #expect(sink.seqs.filter { $0 > history.seq } == Array((history.seq + 1)...total))
            #expect(sink.seqs == Array(sink.seqs[0]...total))
        }
    }

    static func deletion(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration(autoCreateTopics: true))
        let first = try await broker.createTopic("t").get()
        let sink = RecordingSink()
        _ = try await broker.subscribe(topic: "t", sink: sink).get()
        _ = try await publish(broker, "t", ["a", "b"])
        _ = try await broker.deleteTopic("t").get()
        try await eventually { sink.deleted }
        #expect(sink.events == ["1", "2", "deleted"])
        // The same name again: a new topic, from seq 1, another epoch, no history.
        let again = try await broker.createTopic("t").get()
        #expect(again.epoch != first.epoch && again.seq == 0)
        #expect(try await broker.history(topic: "t", .last(nil)).get().publications.isEmpty)
        #expect(try await publish(broker, "t", ["c"]).map(\.seq) == [1])
        try await Task.sleep(for: .milliseconds(20))
        #expect(sink.events == ["1", "2", "deleted"], "a deleted topic's sink hears nothing of the new one")
    }

    static func concurrentOrder(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration(historySize: 0))
        _ = try await broker.createTopic("t").get()
        let sink = RecordingSink()
        _ = try await broker.subscribe(topic: "t", sink: sink).get()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<250 { _ = try? await publish(broker, "t", ["m"]) } }
            }
        }
        try await eventually { sink.seqs.count >= 2_000 }
        #expect(sink.seqs == Array(1...2_000))
    }

    static func publishCache(_ make: MakeEngine) async throws {
        for autoCreate in [false, true] {
            let broker = try await make(BrokerConfiguration(historySize: 10, autoCreateTopics: autoCreate))
            var cache = PublishCache()
            _ = try await broker.createTopic("t").get()
            _ = try await broker.createTopic("u").get()
            func one(_ topic: String) async throws -> UInt64 {
                var messages = [message("x")]
                return try await publish(broker, topic, &messages, cache: &cache)[0].seq
            }
            #expect(try await one("t") == 1)
            #expect(try await one("t") == 2)
            #expect(try await one("u") == 1, "another name is looked up, not sent to the cached topic")
            #expect(try await one("t") == 3)
            _ = try await broker.deleteTopic("t").get()
            if autoCreate {
                #expect(try await one("t") == 1, "a new topic of the same name")
                #expect(try await broker.history(topic: "t", .last(nil)).get().publications.map(\.seq) == [1])
            } else {
                await expectError(.topicNotFound) { _ = try await one("t") }
                _ = try await broker.createTopic("t").get()
                #expect(try await one("t") == 1)
            }
        }
    }

    static func publishedCount(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration())
        _ = try await broker.createTopic("a").get()
        _ = try await broker.createTopic("b").get()
        _ = try await publish(broker, "a", ["x", "y"])
        _ = try await publish(broker, "b", ["x"])
        #expect(try await broker.publishedCount().get() == 3)
        _ = try await broker.deleteTopic("a").get()
        #expect(try await broker.publishedCount().get() == 3)
        _ = try await broker.createTopic("a").get()
        _ = try await publish(broker, "a", ["x"])
        #expect(try await broker.publishedCount().get() == 4)
    }

    static func presence(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration())
        let ana = PresenceEntry(clientID: "c-1", user: "ana", joinedAtMillis: 2_000)
        let anonymous = PresenceEntry(clientID: "c-2", user: nil, joinedAtMillis: 1_000)
        await expectError(.topicNotFound) { _ = try await broker.presence(topic: "t").get() }
        await expectError(.topicNotFound) { try await broker.joinPresence(topic: "t", entry: ana).get() }
        await expectError(.badRequest) { _ = try await broker.presence(topic: "with space").get() }
        _ = try await broker.createTopic("t").get()
        _ = try await broker.createTopic("other").get()
        #expect(try await broker.presence(topic: "t").get().isEmpty)
        let sink = RecordingSink()
        _ = try await broker.subscribe(topic: "t", sink: sink).get()
        try await broker.joinPresence(topic: "t", entry: ana).get()
        try await broker.joinPresence(topic: "t", entry: anonymous).get()
        try await broker.joinPresence(topic: "other", entry: anonymous).get()
        // Oldest subscription first; a user of its own or none.
        #expect(try await broker.presence(topic: "t").get() == [anonymous, ana])
        #expect(try await broker.presence(topic: "other").get() == [anonymous])
        // The same entry again changes nothing; leaving twice, or what is not there, neither.
        try await broker.joinPresence(topic: "t", entry: ana).get()
        broker.leavePresence(topic: "t", clientID: "c-2")
        broker.leavePresence(topic: "t", clientID: "c-2")
        broker.leavePresence(topic: "t", clientID: "nobody")
        #expect(try await broker.presence(topic: "t").get() == [ana])
        try await eventually { sink.presence.count >= 3 }
        #expect(sink.presence == ["join c-1", "join c-2", "leave c-2"])
        #expect(try await broker.presence(topic: "other").get() == [anonymous], "a topic's leave is its own")
        // A deleted topic's list goes with it.
        _ = try await broker.deleteTopic("t").get()
        _ = try await broker.createTopic("t").get()
        #expect(try await broker.presence(topic: "t").get().isEmpty)
        try await Task.sleep(for: .milliseconds(50))
        #expect(sink.presence == ["join c-1", "join c-2", "leave c-2"])
    }

    static func maxTopics(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration(autoCreateTopics: true, maxTopics: 2))
        _ = try await broker.createTopic("a").get()
        _ = try await publish(broker, "b", ["x"])
        await expectError(.limitExceeded) { _ = try await broker.createTopic("c").get() }
        await expectError(.limitExceeded) { _ = try await publish(broker, "c", ["x"]) }
        _ = try await broker.deleteTopic("a").get()
        _ = try await broker.createTopic("c").get()
    }
}

extension BrokerContract {
    static func watching(_ make: MakeEngine) async throws {
        let broker = try await make(BrokerConfiguration(historySize: 10, autoCreateTopics: true))
        let watcher = RecordingWatcher()
        // Followed by the node already: not announced.
        _ = try await broker.subscribe(topic: "orders.followed", sink: RecordingSink()).get()
        try await broker.watchTopics(prefixes: ["orders."], watcher: watcher).get()
        _ = try await publish(broker, "other", ["x"])
        _ = try await publish(broker, "orders.followed", ["x"])
        let first = try await publish(broker, "orders.eu", ["a", "b"])
        try await eventually { watcher.topics.contains("orders.eu") }
        let told = try #require(watcher.announcements.first { $0.topic == "orders.eu" })
        #expect(told.after < first[0].seq, "announced from before its first publication")
        #expect(Set(watcher.topics) == ["orders.eu"], "only unfollowed topics under the prefix: \(watcher.topics)")
        // A prefix watched no more.
        try await broker.watchTopics(prefixes: [], watcher: watcher).get()
        _ = try await publish(broker, "orders.us", ["x"])
        _ = try await broker.history(topic: "orders.us", .last(0)).get()
        try await Task.sleep(for: .milliseconds(50))
        #expect(!watcher.topics.contains("orders.us"))
    }
}

/// A watcher that records what an engine announces.
public final class RecordingWatcher: TopicWatcher {
    private let state = NIOLockedValueBox<[(topic: String, after: UInt64)]>([])

    public init() {}

    public var announcements: [(topic: String, after: UInt64)] { state.withLockedValue { $0 } }
    public var topics: [String] { announcements.map(\.topic) }

    public func topicAppeared(_ topic: String, after seq: UInt64) {
        state.withLockedValue { $0.append((topic, seq)) }
    }
}

/// A sink that records what an engine hands it.
public final class RecordingSink: TopicSink {
    private let state = NIOLockedValueBox<(events: [String], payloads: [String])>(([], []))

    public init() {}

    public var events: [String] { state.withLockedValue { $0.events } }
    public var seqs: [UInt64] { events.compactMap { UInt64($0) } }
    public var payloads: [String] { state.withLockedValue { $0.payloads } }
    public var deleted: Bool { events.last == "deleted" }

    public var deliveryBatchLimit: Int { 7 }

    public func presenceChanged(_ diff: PresenceDiff) {
        let changes = diff.joins.map { "join \($0.clientID)" } + diff.leaves.map { "leave \($0.clientID)" }
        state.withLockedValue { $0.events.append(contentsOf: changes) }
    }

    /// The presence diffs handed over, as `join <client id>` and `leave <client id>`.
    public var presence: [String] { events.filter { $0.hasPrefix("join ") || $0.hasPrefix("leave ") } }

    public func deliver(_ batch: inout PublicationBatch, counters: TopicCounters, receipts: inout [PublishReceipt]) {
        for slot in 0..<batch.count {
            batch.makePublication(slot, counters: counters) { _ in }
            let publication = batch.publicationBuffer[slot]
            state.withLockedValue {
                $0.events.append(String(publication.seq))
                $0.payloads.append(String(buffer: publication.payload))
            }
            receipts.append(
                PublishReceipt(
                    topic: publication.topic, messageID: publication.id, seq: publication.seq, delivered: 1, dropped: 0,
                    timestampMillis: publication.timestampMillis
                )
            )
        }
    }

    public func topicDeleted() {
        state.withLockedValue { $0.events.append("deleted") }
    }

    public func missed(_ count: Int) {
        state.withLockedValue { $0.events.append("missed \(count)") }
    }
}
