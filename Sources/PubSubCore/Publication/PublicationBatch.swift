import NIOCore

/// New publications of one topic on their way from the engine to the node, in stack storage
/// the engine lends for one ``TopicSink/deliver(_:counters:receipts:)`` call: the engine puts
/// in each message's place in the topic (seq, id, payload, time), the sink makes each into its
/// ``Publication`` (frames encoded for the formats it serves), and the engine takes the
/// publications on to its history. Each publication's content is built where the sink encodes
/// it and moved once, into the publication.
///
///     for slot in 0..<batch.count { batch.makePublication(slot, counters: counters) { encodeFrames(&$0) } }
///
/// One of the few places outside Swift's memory safety (docs/design.md): a batch is made only
/// by `withPublicationBatch`, whose storage lives on the stack for the call, and the sink makes
/// each publication exactly once, in any order, before the engine takes them.
public struct PublicationBatch: ~Copyable {
    /// What the engine decided for one message.
    package struct Entry {
        let seq: UInt64
        let id: MessageID
        let payload: ByteBuffer
        let timestampMillis: Int64

        package init(seq: UInt64, id: MessageID, payload: ByteBuffer, timestampMillis: Int64) {
            self.seq = seq
            self.id = id
            self.payload = payload
            self.timestampMillis = timestampMillis
        }
    }

    public let topic: String
    private let entries: UnsafeMutablePointer<Entry>
    private let publications: UnsafeMutablePointer<Publication>
    public let count: Int

    fileprivate init(topic: String, entries: UnsafeMutablePointer<Entry>, publications: UnsafeMutablePointer<Publication>, count: Int) {
        self.topic = topic
        self.entries = entries
        self.publications = publications
        self.count = count
    }

    /// Makes publication `index` (once each): its content, lent to `encode` to add its frames,
    /// then moved into the publication.
    public func makePublication(
        _ index: Int, counters: TopicCounters, latencyMark: LatencyMark = .none, encode: (inout PublicationContent) -> Void
    ) {
        precondition(index >= 0 && index < count)
        let entry = (entries + index).move()
        var content = PublicationContent(
            topic: topic, seq: entry.seq, id: entry.id, payload: entry.payload, timestampMillis: entry.timestampMillis,
            latencyMark: latencyMark
        )
        encode(&content)
        (publications + index).initialize(to: Publication(content, topicCounters: counters))
    }

    /// The publications, for the fan-out, once the sink has made each.
    public var publicationBuffer: UnsafeBufferPointer<Publication> {
        UnsafeBufferPointer(start: publications, count: count)
    }
}

/// Lends `deliver` a batch of `count` publications of `topic`: `entry` is called for each
/// index, in order, to place its message, `deliver` hands the batch to the sink, and `take`
/// receives each publication, in order, after.
@inline(__always)
package func withPublicationBatch(
    topic: String, count: Int, entry: (Int) -> PublicationBatch.Entry, deliver: (inout PublicationBatch) -> Void,
    take: (consuming Publication) -> Void
) {
    withUnsafeTemporaryAllocation(of: PublicationBatch.Entry.self, capacity: count) { entries in
        withUnsafeTemporaryAllocation(of: Publication.self, capacity: count) { publications in
            for index in 0..<count { (entries.baseAddress! + index).initialize(to: entry(index)) }
            var batch = PublicationBatch(topic: topic, entries: entries.baseAddress!, publications: publications.baseAddress!, count: count)
            deliver(&batch)
            for index in 0..<count { take((publications.baseAddress! + index).move()) }
        }
    }
}
