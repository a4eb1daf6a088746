import NIOCore
import PubSubCore

/// This node's subscription to one topic's channel: it hands the hub's sink each publication
/// of the topic once, in `seq` order. Redis sends a channel's messages in the order its
/// scripts ran, so on a healthy link they come without gaps; after the link was lost the
/// feed sees a gap (or is told to catch up), reads what it missed from the history and says
/// how many are no longer retained (``TopicSink/missed(_:)``).
///
/// Confined to the engine's event loop once registered: every property below is read and
/// written there only (the broker hops there before touching a feed).
final class RedisTopicFeed: @unchecked Sendable {
    let name: String
    let sink: any TopicSink
    let counters = TopicCounters()

    /// The last seq handed to the sink, or known to be in any history its joins read; nil
    /// until the first message or the subscription's answer.
    var lastSeq: UInt64?
    /// The topic's incarnation this feed follows; another one means this one was deleted.
    var epoch: String?
    /// Deleted (or gone from Redis): the sink was told, nothing more goes to it.
    var ended = false

    /// A history read is under way: channel messages wait in `waiting` until it is done.
    var catchingUp = false
    /// Asked to catch up again while a read was under way.
    var catchUpAgain = false
    var waiting: [[RedisRecord]] = []
    private var waitingRecords = 0
    /// What waits while catching up is bounded: past this it is let go of, and the gap it
    /// leaves is read from the history like any other.
    static let maxWaitingRecords = 10_000

    /// Where the sink's receipts go (a delivery from the channel has no publisher to tell).
    private var receipts: [PublishReceipt] = []

    init(name: String, sink: any TopicSink) {
        self.name = name
        self.sink = sink
    }

    /// The subscription's answer: the topic's position when the node was subscribed. Every
    /// publication after it comes on the channel; the ones up to it are in the history the
    /// joins read.
    /// Returns the seq after which every publication is handed to the sink.
    func start(at seq: UInt64, epoch: String) -> UInt64 {
        if self.epoch == nil { self.epoch = epoch }
        if lastSeq == nil || lastSeq! < seq { lastSeq = seq }
        return lastSeq!
    }

    /// Hands the records the sink has not had to it; false (and nothing handed) when the
    /// first of them is not the next seq: a gap, to be read from the history.
    func deliver(_ records: some Collection<RedisRecord>) -> Bool {
        let new = records.filter { lastSeq == nil || $0.seq > lastSeq! }
        guard let first = new.first else { return true }
        if let lastSeq, first.seq != lastSeq + 1 { return false }
        var start = 0
        while start < new.count {
            let count = min(new.count - start, max(1, sink.deliveryBatchLimit))
            let from = start
            withPublicationBatch(
                topic: name, count: count, entry: { new[from + $0].entry },
                deliver: { batch in sink.deliver(&batch, counters: counters, receipts: &receipts) }, take: { _ in }
            )
            start += count
        }
        receipts.removeAll(keepingCapacity: true)
        lastSeq = new.last!.seq
        return true
    }

    /// Keeps records that came while catching up, unless there are too many.
    func hold(_ records: [RedisRecord]) {
        waitingRecords += records.count
        if waitingRecords > Self.maxWaitingRecords {
            waiting.removeAll()
            waitingRecords = 0
            return
        }
        waiting.append(records)
    }

    func takeWaiting() -> [[RedisRecord]] {
        defer {
            waiting = []
            waitingRecords = 0
        }
        return waiting
    }
}
