import CoreMetrics
import Logging
import NIOCore
import PubSubCore
import PubSubProtocol

/// The outbound half of a connection (the hot path): takes what publishers queued in its
/// ``Subscriber`` and writes it as one buffer per drain, flushed once. Event-loop confined.
final class OutboundWriter {
    private let subscriber: Subscriber
    let wire: any SessionWire
    let socket: RawFrameWriter
    private let counters: HubCounters
    var pending = OutboundQueue()
    /// The socket took less than the last drain had: drain again when it is writable.
    var waitingForWritability = false
    private var drops = DropNotices()
    private var dropNoticeTimer: Scheduled<Void>?
    private var closed = false
    /// This connection's share of the sampled deliveries (``LatencyMark``).
    private let latencySalt = UInt32.random(in: 0...UInt32.max)
    /// The sampled deliveries of the drain under way, timed once its writes are flushed.
    private var timed: [Publication] = []
    private let latencyHistogram: CoreMetrics.Timer
    private let logger: Logger

    init(
        subscriber: Subscriber, wire: any SessionWire, writer: RawFrameWriter, counters: HubCounters, metrics: ServerMetrics, logger: Logger
    ) {
        self.subscriber = subscriber
        self.wire = wire
        self.socket = writer
        self.counters = counters
        self.latencyHistogram = metrics.deliveryLatency
        self.logger = logger
    }

    /// The most a drain copies into one write before it flushes and asks the channel whether
    /// it takes more. A socket that takes less (a slow reader) leaves the rest in the
    /// subscriber's queue, shared and still under its limits and policy, instead of as a copy
    /// the channel holds for this connection alone.
    static let writeChunkBytes = 64 * 1024

    /// Writes what is queued: all of it when `everything` (a shutdown, before its close frame),
    /// else while the socket takes it.
    func drain(_ context: ChannelHandlerContext, everything: Bool) {
        guard context.channel.isWritable || everything else {
            // Resume when the socket drains; meanwhile the queue's limits and policy apply.
            waitingForWritability = true
            return
        }
        var delivered = 0
        var more: Bool
        repeat {
            let batch = subscriber.drain(into: &pending, maxBytes: Self.writeChunkBytes)
            // Tell the client about losses before it sees the events that survived them.
            let notice = batch.dropped > 0 ? noteDrops(batch.dropped, context.eventLoop) : nil
            if wire.batched {
                delivered += writeBatched(bytes: batch.bytes, leading: notice, allocator: context.channel.allocator)
            } else {
                if let notice { socket.write(notice) }
                delivered += writePending(bytes: batch.bytes, allocator: context.channel.allocator)
            }
            socket.flush()
            more = batch.more
        } while more && (context.channel.isWritable || everything)
        if more { waitingForWritability = true }
        if delivered > 0 { counters.recordDelivered(delivered) }
        if !timed.isEmpty { recordTimed() }
    }

    /// The drain's sampled deliveries, now that their frames are flushed to the socket.
    private func recordTimed() {
        let now = MonotonicClock.nanos()
        for publication in timed {
            latencyHistogram.recordNanoseconds(Int64(truncatingIfNeeded: publication.recordDeliveryLatency(at: now)))
        }
        timed.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    func noteIfTimed(_ publication: Publication) {
        if publication.content.latencyMark.selects(salt: latencySalt, seq: publication.content.seq) { timed.append(publication) }
    }

    /// Writes the drained items as one buffer: a copy of each shared frame costs less than a
    /// channel write per frame (one pending-write entry, retain and iovec per item), and the
    /// socket gets one write per batch. Frames are copied, never re-encoded, straight from
    /// where their bytes lie (``PublicationFrames/bytes(_:)``) into the batch's storage: no
    /// `ByteBuffer` call per event. For wires whose deliveries need per-connection bytes
    /// (Phoenix 2.0.0's join_ref), each event is written as frame header + prefix + the shared
    /// body. Items are moved out of `pending`, not copied. Returns the events written.
    private func writePending(bytes: Int, allocator: ByteBufferAllocator) -> Int {
        let format = wire.format
        let prefix = wire.deliveryPrefix
        if pending.count == 1 {
            // A lone event or reply (or one read's replies): the shared frame itself, no copy.
            switch pending.popFirst()! {
            case .publication(let publication) where prefix == nil:
                socket.write(publication.content.frames[format]!)
                noteIfTimed(publication)
                return 1
            case .frame(let frame):
                socket.write(frame.bytes)
                return 0
            case let item:
                pending.append(item)  // a Phoenix 2.0.0 event or a deletion: framed below
            }
        }
        let perItem = prefix.map { $0.readableBytes + WebSocketFraming.maxHeaderSize } ?? 0
        var batch = BatchBuffer.take(capacity: bytes + pending.count * perItem, allocator: allocator)
        var delivered = 0
        // Where a run of copies stopped: at a deletion (its notice is built and written here),
        // or at an item that did not fit (`bytes` is the queue's own count, so none should:
        // the batch grows and the next run starts with it).
        var stopped: OutboundItem?
        repeat {
            batch.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { out in
                copyRun(into: out, format: format, prefix: prefix, stopped: &stopped, delivered: &delivered)
            }
            switch stopped {
            case .topicDeleted(let topic):
                batch.writeImmutableBuffer(wire.notice(.topicDeleted(topic.name)))
                stopped = nil
            case .missed(let missed):
                batch.writeImmutableBuffer(wire.notice(.messagesDropped(missed.count, topic: missed.topic)))
                stopped = nil
            case .publication(let publication):
                batch.reserveCapacity(minimumWritableBytes: publication.content.frames.bytes(format).count + perItem)
            case .frame(let frame):
                batch.reserveCapacity(minimumWritableBytes: frame.bytes.readableBytes)
            case nil:
                break
            }
        } while stopped != nil || !pending.isEmpty
        socket.write(batch)
        BatchBuffer.keep(batch)
        return delivered
    }

    /// Copies events and replies into `out`, the one in `stopped` first, then from `pending`,
    /// until the queue is empty, a deletion comes or an item does not fit (left in `stopped`);
    /// returns the bytes written. Events are copied from where their frame's bytes lie.
    private func copyRun(
        into out: UnsafeMutableRawBufferPointer, format: Int, prefix: ByteBuffer?, stopped: inout OutboundItem?, delivered: inout Int
    ) -> Int {
        var offset = 0
        func fits(_ count: Int) -> Bool { out.count - offset >= count }
        func put(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count > 0, let source = bytes.baseAddress else { return }
            (out.baseAddress! + offset).copyMemory(from: source, byteCount: bytes.count)
            offset += bytes.count
        }
        while let item = stopped.take() ?? pending.popFirst() {
            switch consume item {
            case .publication(let publication):
                let frame = publication.content.frames.bytes(format)
                if let prefix {
                    guard fits(WebSocketFraming.maxHeaderSize + prefix.readableBytes + frame.count) else {
                        stopped = .publication(publication)
                        return offset
                    }
                    offset += WebSocketFraming.writeHeader(
                        first: WebSocketFraming.text, length: prefix.readableBytes + frame.count,
                        to: UnsafeMutableRawBufferPointer(rebasing: out[offset...])
                    )
                    prefix.withUnsafeReadableBytes(put)
                } else if !fits(frame.count) {
                    stopped = .publication(publication)
                    return offset
                }
                put(frame)
                delivered += 1
                noteIfTimed(publication)
            case .frame(let frame):
                guard fits(frame.bytes.readableBytes) else {
                    stopped = .frame(frame)
                    return offset
                }
                frame.bytes.withUnsafeReadableBytes(put)
            case let deletion:
                stopped = deletion
                return offset
            }
        }
        return offset
    }

    /// Tells the client about drops at most once a second (SPEC 2.4): returns the notice to
    /// write before what the drain delivers, when one is due now.
    private func noteDrops(_ count: Int, _ eventLoop: any EventLoop) -> ByteBuffer? {
        if let dropped = drops.record(count) {
            DropNotices.log(dropped, clientID: subscriber.clientID, policy: subscriber.limits.policy, to: logger)
            return wire.notice(.messagesDropped(dropped))
        }
        if drops.isHoldingBack && dropNoticeTimer == nil {
            let loop = NIOLoopBound(self, eventLoop: eventLoop)
            dropNoticeTimer = eventLoop.scheduleTask(deadline: drops.due) {
                let outbound = loop.value
                outbound.dropNoticeTimer = nil
                guard !outbound.closed, let notice = outbound.noteDrops(0, eventLoop) else { return }
                outbound.socket.writeAndFlush(notice)
            }
        }
        return nil
    }

    /// Nothing more is written; what is pending is let go of.
    func close() {
        closed = true
        dropNoticeTimer?.cancel()
        dropNoticeTimer = nil
        pending.removeAll()
    }
}
