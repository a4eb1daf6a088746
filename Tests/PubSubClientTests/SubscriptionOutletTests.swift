import Testing

@testable import PubSubClient

/// The bound on what a subscription holds unread: events past it are dropped, and the consumer
/// gets a gap naming them before the next event, once it has taken half of what waited.
@Suite("Subscription's pending bound")
struct SubscriptionOutletTests {
    /// An outlet and the subscription a consumer iterates (never connected: the client is only
    /// kept alive by it).
    static func outlet(_ topic: String = "orders", events: Int? = nil, bytes: Int? = nil) throws -> (SubscriptionOutlet, PubSubSubscription) {
        let (stream, continuation) = AsyncThrowingStream<SubscriptionElement, any Error>.makeStream()
        let outlet = SubscriptionOutlet(continuation: continuation, topic: topic, maxEvents: events, maxBytes: bytes)
        let client = try PubSubClient(url: "ws://127.0.0.1:9/ws")
        return (outlet, PubSubSubscription(topic: topic, stream: stream, pending: outlet.pending, client: client))
    }

    static func event(_ seq: Int, topic: String = "orders", epoch: String? = "E1", payload: String = "1") -> SubscriptionElement {
        .event(PubSubEvent(topic: topic, seq: seq, epoch: epoch, id: "m\(seq)", payload: RawJSON(trusted: payload), timestamp: "2026-12-05T00:00:00.000Z"))
    }

    /// Takes `count` elements.
    static func take(_ count: Int, from iterator: inout PubSubSubscription.AsyncIterator) async throws -> [SubscriptionElement] {
        var taken: [SubscriptionElement] = []
        for _ in 0..<count { taken.append(try #require(try await iterator.next())) }
        return taken
    }

    @Test func eventsPastTheCountAreDroppedAndDeclaredOnceHalfIsTaken() async throws {
        let (created, subscription) = try Self.outlet(events: 4)
        var outlet = created
        var iterator = subscription.makeAsyncIterator()
        for seq in 1...10 { outlet.deliver(Self.event(seq)) }
        #expect(outlet.pending.current.count == 4)
        #expect(try await Self.take(1, from: &iterator) == [Self.event(1)])
        // Three still wait, more than half of four: 11 is dropped too.
        outlet.deliver(Self.event(11))
        #expect(outlet.pending.current.count == 3)
        #expect(try await Self.take(1, from: &iterator) == [Self.event(2)])
        // Two wait: 12 comes, after the gap for 5 … 11, and fills it again.
        outlet.deliver(Self.event(12))
        outlet.deliver(Self.event(13))
        #expect(outlet.pending.current.count == 4)
        #expect(
            try await Self.take(4, from: &iterator) == [
                Self.event(3), Self.event(4), .gap(PubSubGap(topic: "orders", epoch: "E1", missing: 5...11)), Self.event(12),
            ]
        )
        outlet.deliver(Self.event(14))
        #expect(try await Self.take(2, from: &iterator) == [.gap(PubSubGap(topic: "orders", epoch: "E1", missing: 13...13)), Self.event(14)])
        #expect(outlet.pending.current == (0, 0))
    }

    @Test func payloadBytesAreBoundedButOneLargeEventPassesWhenNothingWaits() async throws {
        let (created, subscription) = try Self.outlet(bytes: 10)
        var outlet = created
        var iterator = subscription.makeAsyncIterator()
        outlet.deliver(Self.event(1, payload: #""ab""#))
        outlet.deliver(Self.event(2, payload: #""cd""#))
        outlet.deliver(Self.event(3, payload: #""ef""#))
        #expect(outlet.pending.current == (2, 8))
        #expect(try await Self.take(2, from: &iterator) == [Self.event(1, payload: #""ab""#), Self.event(2, payload: #""cd""#)])
        let large = #""\#(String(repeating: "x", count: 30))""#
        outlet.deliver(Self.event(4, payload: large))
        #expect(outlet.pending.current == (2, 32))
        #expect(
            try await Self.take(2, from: &iterator) == [
                .gap(PubSubGap(topic: "orders", epoch: "E1", missing: 3...3)), Self.event(4, payload: large),
            ]
        )
    }

    @Test func aPatternsGapNamesThePattern() async throws {
        let (created, subscription) = try Self.outlet("orders.*", events: 2)
        var outlet = created
        var iterator = subscription.makeAsyncIterator()
        outlet.deliver(Self.event(1, topic: "orders.eu", epoch: nil))
        outlet.deliver(Self.event(1, topic: "orders.us", epoch: nil))
        outlet.deliver(Self.event(2, topic: "orders.eu", epoch: nil))
        _ = try await Self.take(2, from: &iterator)
        outlet.deliver(Self.event(2, topic: "orders.us", epoch: nil))
        #expect(
            try await Self.take(2, from: &iterator) == [
                .gap(PubSubGap(topic: "orders.*", epoch: nil, missing: nil)), Self.event(2, topic: "orders.us", epoch: nil),
            ]
        )
    }

    /// The machine's gap (here an epoch change) is never dropped, and comes after the gap for
    /// what was dropped before it.
    @Test func theMachinesGapsPassInOrder() async throws {
        let (created, subscription) = try Self.outlet(events: 1)
        var outlet = created
        var iterator = subscription.makeAsyncIterator()
        outlet.deliver(Self.event(1))
        outlet.deliver(Self.event(2))
        let epochChange = PubSubGap(topic: "orders", epoch: "E2", missing: nil, previousEpoch: "E1", previousSeq: 2)
        outlet.deliver(.gap(epochChange))
        outlet.deliver(Self.event(1, epoch: "E2"))
        #expect(
            try await Self.take(3, from: &iterator) == [
                Self.event(1), .gap(PubSubGap(topic: "orders", epoch: "E1", missing: 2...2)), .gap(epochChange),
            ]
        )
        // Event 1 of E2 found the outlet still full (three waited): dropped, and declared in E2.
        outlet.deliver(Self.event(2, epoch: "E2"))
        #expect(
            try await Self.take(2, from: &iterator) == [
                .gap(PubSubGap(topic: "orders", epoch: "E2", missing: 1...1)), Self.event(2, epoch: "E2"),
            ]
        )
    }

    @Test func withoutBoundsEverythingWaits() async throws {
        let (created, subscription) = try Self.outlet()
        var outlet = created
        var iterator = subscription.makeAsyncIterator()
        for seq in 1...1_000 { outlet.deliver(Self.event(seq)) }
        #expect(outlet.pending.current.count == 1_000)
        #expect(try await Self.take(1_000, from: &iterator) == (1...1_000).map { Self.event($0) })
    }
}
