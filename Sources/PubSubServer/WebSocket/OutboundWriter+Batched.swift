import NIOCore
import PubSubCore
import PubSubProtocol

/// The drain of a batched connection (`/ws?batch=1`): what is queued goes out as one text
/// frame, the queued frames' payloads joined by `\n` (``BatchedFrames``). Batches are as large
/// as the queue when the drain runs: under load many events share a frame, when idle each
/// goes alone, as the shared frame itself. Only the native wire batches, uncompressed
/// (``NativeWire``), so no delivery needs a per-connection prefix.
extension OutboundWriter {
    /// Writes the drained items, after `leading` (a drop notice) if any; returns the events
    /// written. A chunk of the drain (``writeChunkBytes``) makes one frame, or more when a
    /// control frame (a pong) is queued among the items: it goes between two batches.
    func writeBatched(bytes: Int, leading: ByteBuffer?, allocator: ByteBufferAllocator) -> Int {
        let format = wire.format
        if pending.count == 1 && leading == nil {
            switch pending.popFirst()! {
            case .publication(let publication):
                socket.write(publication.content.frames[format]!)
                noteIfTimed(publication)
                return 1
            case .frame(let frame) where frame.bytes.withUnsafeReadableBytes(BatchedFrames.textFrameCount) ?? 1 == 1:
                socket.write(frame.bytes)
                return 0
            case let item:
                pending.append(item)
            }
        }
        var batch = BatchBuffer.take(capacity: WebSocketFraming.maxHeaderSize + bytes, allocator: allocator)
        BatchedFrames.open(&batch)
        var delivered = 0
        // Whether the frame under way has a line, so the next one needs a separator first.
        var separate = false
        if let leading { appendLines(of: leading, to: &batch, separate: &separate) }
        // Where a run of copies stopped: at a deletion (its notice is built and added here),
        // at a control frame, or at an item that did not fit (the batch grows for it).
        var stopped: OutboundItem?
        repeat {
            batch.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { out in
                copyLines(into: out, format: format, separate: &separate, stopped: &stopped, delivered: &delivered)
            }
            switch stopped {
            case .topicDeleted(let topic):
                appendLines(of: wire.notice(.topicDeleted(topic.name)), to: &batch, separate: &separate)
                stopped = nil
            case .missed(let missed):
                appendLines(of: wire.notice(.messagesDropped(missed.count, topic: missed.topic)), to: &batch, separate: &separate)
                stopped = nil
            case .publication(let publication):
                batch.reserveCapacity(minimumWritableBytes: publication.content.frames.bytes(format).count)
            case .frame(let frame) where frame.bytes.withUnsafeReadableBytes(BatchedFrames.textFrameCount) == nil:
                // Not text: written as it is, between the batch so far and the rest.
                if separate { writeFrame(&batch) }
                socket.write(frame.bytes)
                batch = allocator.buffer(capacity: WebSocketFraming.maxHeaderSize + bytes)
                BatchedFrames.open(&batch)
                separate = false
                stopped = nil
            case .frame(let frame):
                batch.reserveCapacity(minimumWritableBytes: frame.bytes.readableBytes)
            case nil:
                break
            }
        } while stopped != nil || !pending.isEmpty
        if separate { writeFrame(&batch) }
        BatchBuffer.keep(batch)
        return delivered
    }

    /// Puts the header before the batch's lines and hands the frame to the socket.
    private func writeFrame(_ batch: inout ByteBuffer) {
        BatchedFrames.close(&batch)
        socket.write(batch)
    }

    /// Adds the payload of each frame in `frames` (text frames the session made: a notice) as
    /// lines of the batch.
    private func appendLines(of frames: ByteBuffer, to batch: inout ByteBuffer, separate: inout Bool) {
        batch.writeWithUnsafeMutableBytes(minimumWritableBytes: frames.readableBytes) { out in
            var offset = 0
            frames.withUnsafeReadableBytes { raw in
                BatchedFrames.forEachPayload(raw) { payload in
                    let written = Self.putLine(payload, into: out, at: offset, separate: &separate)
                    offset += written
                }
            }
            return offset
        }
    }

    /// Copies `payload` into `out` at `offset`, after a separator when the frame has a line
    /// already; returns the bytes written. `out` has room: a line and its separator are
    /// shorter than the frame they come from (its header has two bytes at least).
    @inline(__always)
    private static func putLine(_ payload: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, at offset: Int, separate: inout Bool) -> Int {
        var written = 0
        if separate {
            out[offset] = BatchedFrames.separator
            written = 1
        }
        separate = true
        guard payload.count > 0, let source = payload.baseAddress else { return written }
        (out.baseAddress! + offset + written).copyMemory(from: source, byteCount: payload.count)
        return written + payload.count
    }

    /// Copies the payloads of events and replies into `out` as lines, the one in `stopped`
    /// first, then from `pending`, until the queue is empty, a deletion or a control frame
    /// comes or an item does not fit (left in `stopped`); returns the bytes written. Each
    /// frame is measured whole against the room left: its payload and separator need less.
    private func copyLines(
        into out: UnsafeMutableRawBufferPointer, format: Int, separate: inout Bool, stopped: inout OutboundItem?, delivered: inout Int
    ) -> Int {
        var offset = 0
        while let item = stopped.take() ?? pending.popFirst() {
            switch consume item {
            case .publication(let publication):
                let frame = publication.content.frames.bytes(format)
                guard out.count - offset >= frame.count else {
                    stopped = .publication(publication)
                    return offset
                }
                let written = Self.putLine(BatchedFrames.payload(ofFrame: frame), into: out, at: offset, separate: &separate)
                offset += written
                delivered += 1
                noteIfTimed(publication)
            case .frame(let frame):
                var joined = false
                if out.count - offset >= frame.bytes.readableBytes {
                    joined = frame.bytes.withUnsafeReadableBytes { raw in
                        guard BatchedFrames.textFrameCount(raw) != nil else { return false }
                        BatchedFrames.forEachPayload(raw) { payload in
                            let written = Self.putLine(payload, into: out, at: offset, separate: &separate)
                            offset += written
                        }
                        return true
                    }
                }
                guard joined else {
                    stopped = .frame(frame)
                    return offset
                }
            case let deletion:
                stopped = deletion
                return offset
            }
        }
        return offset
    }
}
