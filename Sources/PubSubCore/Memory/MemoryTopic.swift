import NIOCore
import Synchronization

/// One topic of the in-memory engine: its `seq`, epoch and history, and the node's sink.
///
/// A publish holds the lock while it assigns `seq`s, hands the publications to the sink and
/// appends them to the history: per-topic order holds across concurrent publishers, and a
/// history read sees exactly the publications the sink was handed before it.
final class MemoryTopic: @unchecked Sendable {
    let name: String
    let epoch: String
    let createdAtMillis: Int64
    let counters = TopicCounters()

    /// Guards everything below; a `Mutex` (a futex word in the object) costs less per publish
    /// than a `pthread_mutex_t`.
    private let lock = Mutex(())
    private var seq: UInt64 = 0
    private var history: HistoryRing
    private var ids = MessageIDGenerator()
    private var sink: (any TopicSink)?
    private var deleted = false

    init(name: String, historySize: Int, now: Int64) {
        self.name = name
        self.createdAtMillis = now
        self.history = HistoryRing(capacity: historySize)
        self.epoch = ids.shortID()
    }

    func snapshot() -> TopicSnapshot {
        let seq = lock.withLock(of: self) { _ in self.seq }
        return TopicSnapshot(
            name: name, createdAtMillis: createdAtMillis, seq: seq, epoch: epoch, dropped: counters.droppedCount
        )
    }

    // MARK: publish (the hot path)

    /// Publishes `inputs[start...]` in order, as consecutive seqs, appending one receipt each
    /// to `receipts`, and returns how many it published: all of them, or none when the topic
    /// was deleted (then the caller looks it up again). Batches larger than the sink takes at
    /// once are published a part at a time, the lock let go of in between.
    func publish(_ inputs: inout [MessageInput], from start: Int, now: Int64, receipts: inout [PublishReceipt]) -> Int {
        var next = start
        while next < inputs.count {
            let published = lock.withLock(of: self) { _ -> Int in
                guard !deleted else { return 0 }
                let sink = self.sink ?? UnobservedTopic.sink
                let count = min(inputs.count - next, sink.deliveryBatchLimit)
                let first = next
                withPublicationBatch(
                    topic: name, count: count,
                    entry: { slot in
                        seq += 1
                        let id = inputs[first + slot].id.map(MessageID.init) ?? ids.uuid()
                        return .init(seq: seq, id: id, payload: inputs[first + slot].takePayload(), timestampMillis: now)
                    },
                    deliver: { batch in sink.deliver(&batch, counters: counters, receipts: &receipts) },
                    // The history takes each publication's first reference.
                    take: { history.append($0) }
                )
                return count
            }
            if published == 0 { break }
            next += published
        }
        return next - start
    }

    // MARK: the node's subscription and history

    func subscribe(_ sink: any TopicSink) throws(PubSubError) -> UInt64 {
        try lock.withLock(of: self) { _ throws(PubSubError) in
            guard !deleted else { throw .topicNotFound(name) }
            self.sink = sink
            return seq
        }
    }

    /// The node's sink, for what is not a publication (presence diffs); nil once deleted.
    var currentSink: (any TopicSink)? { lock.withLock(of: self) { _ in sink } }

    func unsubscribe(_ sink: any TopicSink) {
        lock.withLock(of: self) { _ in
            if self.sink === sink { self.sink = nil }
        }
    }

    func history(_ query: HistoryQuery) throws(PubSubError) -> History {
        try lock.withLock(of: self) { _ throws(PubSubError) -> History in
            guard !deleted else { throw .topicNotFound(name) }
            let publications = switch query {
            case .last(let n): history.last(n ?? history.count)
            case .after(let since): history.after(since)
            }
            return History(publications: publications, seq: seq, epoch: epoch)
        }
    }

    /// Marks the topic deleted; returns its last seq and the sink to tell (outside this lock:
    /// the hub takes its registry's lock to forget the topic, and the registry's lock is taken
    /// before an engine's, never after).
    func delete() -> (seq: UInt64, sink: (any TopicSink)?) {
        lock.withLock(of: self) { _ in
            deleted = true
            // Nothing can read it any more; a publisher's cache may still hold the topic object.
            history = HistoryRing(capacity: 0)
            defer { sink = nil }
            return (seq, sink)
        }
    }
}

/// The sink of a topic nobody on this node subscribes to: each publication is made with no
/// frames (and the payload copied out of the buffer it arrived in) and goes to the history.
final class UnobservedTopic: TopicSink {
    static let sink = UnobservedTopic()

    var deliveryBatchLimit: Int { .max }

    func deliver(_ batch: inout PublicationBatch, counters: TopicCounters, receipts: inout [PublishReceipt]) {
        for slot in 0..<batch.count {
            batch.makePublication(slot, counters: counters) { $0.payload = Publication.ownCopy(of: $0.payload) }
            let publication = batch.publicationBuffer[slot]
            receipts.append(
                PublishReceipt(
                    topic: publication.topic, messageID: publication.id, seq: publication.seq, delivered: 0, dropped: 0,
                    timestampMillis: publication.timestampMillis
                )
            )
        }
    }

    func topicDeleted() {}
    func missed(_ count: Int) {}
}
