import NIOCore
import NIOPosix

/// The buffer a connection's drain copies its batch of events into, one per event-loop thread
/// and reused from drain to drain. A fresh buffer per batch cost a malloc and a free each time,
/// and a batch of a busy publisher's tick (hundreds of KB) was mapped and unmapped by glibc, its
/// pages faulted in and zeroed on every drain. The channel writes the batch before the drain
/// returns, as a rule, and then lets go of it; the next drain on the thread clears it in place.
/// If the channel still holds it (a socket that took only part of it), clearing gives the next
/// batch new storage, as before. (`@unchecked Sendable`: each instance is only ever reached
/// through its own thread's slot.)
final class BatchBuffer: @unchecked Sendable {
    private static let current = ThreadSpecificVariable<BatchBuffer>()
    /// Larger batches get storage of their own, not kept: a thread keeps at most this much.
    static let keptCapacity = 1 << 20
    private var buffer: ByteBuffer?

    /// An empty buffer with room for `capacity` bytes: this thread's, or a new one.
    static func take(capacity: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard capacity <= keptCapacity, var buffer = current.currentValue?.buffer.take() else {
            return allocator.buffer(capacity: capacity)
        }
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    /// Keeps `buffer`, just handed to the channel, for this thread's next batch.
    static func keep(_ buffer: ByteBuffer) {
        guard buffer.capacity <= keptCapacity else { return }
        if let box = current.currentValue {
            box.buffer = buffer
        } else {
            let box = BatchBuffer()
            box.buffer = buffer
            current.currentValue = box
        }
    }
}
