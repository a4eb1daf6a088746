import BrokerContract
import NIOCore
import Testing

@testable import PubSubCore

/// The hub's side of presence on the memory engine: entries made and taken out by
/// subscribe, unsubscribe and close, and the diffs queued for watchers.
@Suite("Hub presence")
struct HubPresenceTests {
    static func subscriber(_ node: MemoryNode, _ id: String, user: String? = nil) -> Subscriber {
        Subscriber(clientID: id, user: user, format: 0, limits: QueueLimits(maxMessages: 1_000, maxBytes: 1 << 20), counters: node.counters) {}
    }

    /// Each diff as `+id` for joins and `-id` for leaves, frames queued for `subscriber`
    /// (acks and other frames left out).
    static func diffs(_ subscriber: Subscriber) -> [String] {
        var items = OutboundQueue()
        _ = subscriber.drain(into: &items)
        return items.map { item -> String? in
            guard case .frame(let frame) = item else { return nil }
            let text = String(buffer: frame.bytes)
            return text.hasPrefix("diff ") ? String(text.dropFirst(5)) : nil
        }.compactMap { $0 }
    }

    static let encode: @Sendable (PresenceDiff) -> ByteBuffer = { diff in
        ByteBuffer(string: "diff " + (diff.joins.map { "+" + $0.clientID } + diff.leaves.map { "-" + $0.clientID }).joined(separator: " "))
    }

    @Test func entriesFollowSubscriptionsAndWatchersGetDiffs() throws {
        let node = MemoryNode()
        _ = try node.createTopic("t")
        let ana = Self.subscriber(node, "a", user: "ana")
        _ = try node.subscribe(ana, topic: "t", replay: .none, ack: ack)
        let entries = try now(node.engine.presence(topic: "t"))
        #expect(entries.map(\.clientID) == ["a"] && entries.first?.user == "ana")
        guard case .now(.success) = node.hub.watchPresence(ana, topic: "t", encode: Self.encode) else {
            Issue.record("watch"); return
        }
        #expect(Self.diffs(ana) == ["+a"], "the whole list first")

        let bob = Self.subscriber(node, "b")
        _ = try node.subscribe(bob, topic: "t", replay: .none, ack: ack)
        _ = try node.unsubscribe(bob, topic: "t")
        _ = try node.subscribe(bob, topic: "t", replay: .none, ack: ack)
        node.unsubscribeAll(bob)
        #expect(Self.diffs(ana) == ["+b", "-b", "+b", "-b"])
        #expect(Self.diffs(bob).isEmpty, "only watchers get diffs")
        #expect(try now(node.engine.presence(topic: "t")).map(\.clientID) == ["a"])

        // Its own join, coming again after its list (as a networked engine's may), is not sent.
        node.hub.presenceWatchers.deliver(PresenceDiff(topic: "t", joins: [entries[0]]))
        #expect(Self.diffs(ana).isEmpty)
        // Watching again changes nothing; unsubscribing stops the diffs and takes the entry out.
        guard case .now(.success) = node.hub.watchPresence(ana, topic: "t", encode: Self.encode) else {
            Issue.record("watch again"); return
        }
        #expect(Self.diffs(ana).isEmpty)
        _ = try node.unsubscribe(ana, topic: "t")
        _ = try node.subscribe(bob, topic: "t", replay: .none, ack: ack)
        #expect(Self.diffs(ana).isEmpty)
        #expect(try now(node.engine.presence(topic: "t")).map(\.clientID) == ["b"])
    }

    @Test func aWatcherNotSubscribedIsNotKept() throws {
        let node = MemoryNode()
        _ = try node.createTopic("t")
        let ana = Self.subscriber(node, "a")
        _ = node.hub.watchPresence(ana, topic: "t", encode: Self.encode)
        let bob = Self.subscriber(node, "b")
        _ = try node.subscribe(bob, topic: "t", replay: .none, ack: ack)
        #expect(Self.diffs(ana).isEmpty)
    }

    @Test func deletionTakesTheListAndTheWatchers() throws {
        let node = MemoryNode()
        _ = try node.createTopic("t")
        let ana = Self.subscriber(node, "a")
        _ = try node.subscribe(ana, topic: "t", replay: .none, ack: ack)
        _ = node.hub.watchPresence(ana, topic: "t", encode: Self.encode)
        _ = Self.diffs(ana)
        _ = try node.deleteTopic("t")
        _ = try node.createTopic("t")
        #expect(try now(node.engine.presence(topic: "t")).isEmpty)
        let bob = Self.subscriber(node, "b")
        _ = try node.subscribe(bob, topic: "t", replay: .none, ack: ack)
        #expect(Self.diffs(ana).isEmpty, "a deleted topic's watcher hears nothing of the new one")
    }
}
