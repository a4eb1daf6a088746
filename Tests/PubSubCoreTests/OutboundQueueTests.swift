import NIOCore
import Testing

@testable import PubSubCore

@Suite("Outbound queue")
struct OutboundQueueTests {
    static func event(_ seq: UInt64) -> OutboundItem {
        .publication(Publication(topic: "t", seq: seq, id: "m\(seq)", payload: ByteBuffer(string: "1"), timestampMillis: 0))
    }

    static func reply(_ text: String) -> OutboundItem { .frame(ByteBuffer(string: text)) }

    /// Events as their seq, replies as their text.
    static func contents(_ queue: borrowing OutboundQueue) -> [String] {
        queue.map { item in
            switch item {
            case .publication(let p): String(p.seq)
            case .frame(let f): String(buffer: f.bytes)
            case .topicDeleted(let t): "deleted \(t.name)"
            case .missed(let m): "missed \(m.count) of \(m.topic)"
            }
        }
    }

    @Test func keepsOrderWhileGrowingAndWrapping() {
        var queue = OutboundQueue()
        var expected: [String] = []
        var next: UInt64 = 1
        // Pop a few and push more, over and over: the head walks around the ring as it grows.
        for round in 0..<40 {
            for _ in 0..<(round % 7 + 3) {
                queue.append(Self.event(next))
                expected.append(String(next))
                next += 1
            }
            for _ in 0..<(round % 3) {
                guard case .publication(let p) = queue.popFirst() else { Issue.record("empty"); return }
                #expect(String(p.seq) == expected.removeFirst())
            }
            #expect(Self.contents(queue) == expected)
            let count = queue.count
            #expect(count == expected.count)
        }
        while queue.popFirst() != nil {}
        let (empty, last) = (queue.isEmpty, queue.popFirst())  // #expect takes no noncopyable values apart
        #expect(empty)
        #expect(last == nil)
    }

    @Test func swapsWholeQueues() {
        var queue = OutboundQueue()
        var other = OutboundQueue()
        queue.append(Self.event(1))
        queue.append(Self.event(2))
        queue.swapContents(with: &other)
        let empty = queue.isEmpty
        #expect(empty)
        #expect(Self.contents(other) == ["1", "2"])
        queue.append(Self.reply("x"))
        #expect(Self.contents(queue) == ["x"])
    }

    @Test func releasesWhatItHolds() {
        weak var held: Publication?
        weak var removed: Publication?
        do {
            var queue = OutboundQueue()
            let publication = Publication(topic: "t", seq: 1, id: "a", payload: ByteBuffer(string: "1"), timestampMillis: 0)
            let other = Publication(topic: "t", seq: 2, id: "b", payload: ByteBuffer(string: "1"), timestampMillis: 0)
            held = publication
            removed = other
            queue.append(.publication(other))
            queue.removeAll()
            queue.append(.publication(publication))
            _ = consume queue
        }
        #expect(held == nil, "dropping the queue releases its items")
        #expect(removed == nil, "removeAll releases its items")
    }
}
