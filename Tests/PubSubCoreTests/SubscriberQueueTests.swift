import NIOCore
import Testing

@testable import PubSubCore

/// A subscriber's queue bounds everything queued for a connection (SPEC 2.4): events take the
/// policy, replies are never dropped and evict events, and whatever is evicted the items come
/// out in the order they went in.
@Suite("Subscriber queue")
struct SubscriberQueueTests {
    static func event(_ seq: UInt64) -> Publication {
        var frames = PublicationFrames()
        frames[0] = ByteBuffer(string: String(seq))
        return Publication(topic: "t", seq: seq, id: "m\(seq)", payload: ByteBuffer(string: "1"), timestampMillis: 0, frames: frames)
    }

    static func subscriber(_ policy: BackpressurePolicy, maxMessages: Int = 1_000, maxBytes: Int = 1 << 20) -> Subscriber {
        Subscriber(clientID: "c", format: 0, limits: QueueLimits(maxMessages: maxMessages, maxBytes: maxBytes, policy: policy), counters: HubCounters()) {}
    }

    /// Events as their seq, replies as their text, in write order.
    static func drain(_ subscriber: Subscriber, maxBytes: Int = .max) -> (items: [String], batch: Subscriber.Batch) {
        var items = OutboundQueue()
        let batch = subscriber.drain(into: &items, maxBytes: maxBytes)
        let texts = items.map { item in
            switch item {
            case .publication(let p): String(p.seq)
            case .frame(let f): String(buffer: f.bytes)
            case .topicDeleted(let t): "deleted \(t.name)"
            case .missed(let m): "missed \(m.count) of \(m.topic)"
            }
        }
        return (texts, batch)
    }

    @Test func repliesAndEventsComeOutInTheOrderTheyWentIn() {
        let s = Self.subscriber(.dropOldest)
        s.enqueue(.frame(ByteBuffer(string: "a")))
        s.enqueue(.publication(Self.event(1)))
        s.enqueue(.publication(Self.event(2)))
        s.enqueue(.frame(ByteBuffer(string: "b")))
        s.enqueue(.frame(ByteBuffer(string: "c")))
        s.enqueue(.publication(Self.event(3)))
        #expect(Self.drain(s).items == ["a", "1", "2", "b", "c", "3"])
        // Again after the first drain: positions are counted across drains.
        s.enqueue(.publication(Self.event(4)))
        s.enqueue(.frame(ByteBuffer(string: "d")))
        #expect(Self.drain(s).items == ["4", "d"])
    }

    /// drop-oldest evicts the oldest event wherever replies stand; the replies keep their places.
    @Test func dropOldestEvictsTheOldestEventBehindReplies() {
        let s = Self.subscriber(.dropOldest, maxMessages: 4)
        s.enqueue(.frame(ByteBuffer(string: "a")))
        s.enqueue(.frame(ByteBuffer(string: "b")))
        s.enqueue(.publication(Self.event(1)))
        s.enqueue(.frame(ByteBuffer(string: "c")))
        s.enqueue(.publication(Self.event(2)))  // evicts 1
        s.enqueue(.publication(Self.event(3)))  // evicts 2
        let (items, batch) = Self.drain(s)
        #expect(items == ["a", "b", "c", "3"])
        #expect(batch.dropped == 2)
    }

    /// A reply that does not fit evicts events under both drop policies, and overflows once only
    /// control items are left; under `disconnect` it overflows at once.
    @Test(arguments: [BackpressurePolicy.dropOldest, .dropNewest, .disconnect])
    func repliesNeverDropButOverflow(policy: BackpressurePolicy) {
        let s = Self.subscriber(policy, maxMessages: 3)
        for seq: UInt64 in 1...3 { s.enqueue(.publication(Self.event(seq))) }
        let first = s.enqueue(.frame(ByteBuffer(string: "r1")))
        if policy == .disconnect {
            #expect(!first)
            #expect(s.hasOverflowed)
            return
        }
        #expect(first)
        #expect(s.enqueue(.frame(ByteBuffer(string: "r2"))))
        #expect(s.enqueue(.frame(ByteBuffer(string: "r3"))))
        #expect(!s.hasOverflowed)
        #expect(!s.enqueue(.frame(ByteBuffer(string: "r4"))))
        #expect(s.hasOverflowed)
        #expect(!s.enqueue(.publication(Self.event(9))), "an overflowed queue takes nothing more")
        #expect(Self.drain(s).batch.overflowed)
    }

    /// The byte limit covers replies too: one reply may pass it alone ("plus one frame").
    @Test func byteLimitCoversReplies() {
        let s = Self.subscriber(.dropNewest, maxBytes: 10)
        #expect(s.enqueue(.frame(ByteBuffer(string: String(repeating: "x", count: 25)))), "alone, one item may be larger")
        #expect(!s.enqueue(.frame(ByteBuffer(string: "y"))))
        #expect(s.hasOverflowed)
    }

    /// Replies that never all leave (a reader always one behind) still come out in order while
    /// the control queue sheds what was taken.
    @Test func aControlQueueThatNeverEmptiesKeepsItsOrder() {
        let s = Self.subscriber(.dropOldest)
        var expected: [String] = []
        var seen: [String] = []
        for n in 0..<500 {
            s.enqueue(.frame(ByteBuffer(string: "r\(n)")))
            expected.append("r\(n)")
            if n % 7 == 0 {
                s.enqueue(.publication(Self.event(UInt64(n + 1))))
                expected.append(String(n + 1))
            }
            // Takes one item at a time, so a reply or two always stays behind.
            if n % 2 == 1 { seen += Self.drain(s, maxBytes: 1).items }
        }
        while true {
            let (items, batch) = Self.drain(s, maxBytes: 1)
            seen += items
            if !batch.more { break }
        }
        #expect(seen == expected)
    }

    /// A partial drain (a socket that takes a little at a time) keeps the write order.
    @Test func partialDrainsKeepTheOrder() {
        let s = Self.subscriber(.dropOldest)
        var expected: [String] = []
        for seq: UInt64 in 1...20 {
            s.enqueue(.publication(Self.event(seq)))
            expected.append(String(seq))
            if seq % 3 == 0 {
                s.enqueue(.frame(ByteBuffer(string: "r\(seq)")))
                expected.append("r\(seq)")
            }
        }
        var seen: [String] = []
        while true {
            let (items, batch) = Self.drain(s, maxBytes: 5)
            seen += items
            if !batch.more { break }
        }
        #expect(seen == expected)
    }
}
