import NIOCore
import Testing

@testable import PubSubServer

/// The drain's reused batch buffer: reused only when nobody else holds it, and a batch still
/// held by the channel is never written over.
@Suite("Batch buffer")
struct BatchBufferTests {
    let allocator = ByteBufferAllocator()

    func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }
    }

    @Test func aBatchTheChannelStillHoldsIsNotOverwritten() {
        var first = BatchBuffer.take(capacity: 64, allocator: allocator)
        first.writeString("first batch")
        let held = first  // what the channel keeps until the socket takes it
        BatchBuffer.keep(first)
        var second = BatchBuffer.take(capacity: 64, allocator: allocator)
        #expect(second.readableBytes == 0)
        second.writeString("second batch")
        #expect(String(buffer: held) == "first batch")
        #expect(String(buffer: second) == "second batch")
        #expect(address(held) != address(second))
    }

    @Test func aReleasedBatchsStorageIsReused() {
        var first = BatchBuffer.take(capacity: 64, allocator: allocator)
        first.writeString("x")
        let storage = address(first)
        BatchBuffer.keep(first)
        first = ByteBuffer()  // the channel wrote it and let go
        var second = BatchBuffer.take(capacity: 64, allocator: allocator)
        #expect(second.readableBytes == 0)
        second.writeString("y")
        #expect(address(second) == storage)
        BatchBuffer.keep(second)
    }

    @Test func aHugeBatchIsNotKept() {
        var huge = BatchBuffer.take(capacity: BatchBuffer.keptCapacity + 1, allocator: allocator)
        huge.writeString("h")
        let storage = address(huge)
        BatchBuffer.keep(huge)
        huge = ByteBuffer()
        let next = BatchBuffer.take(capacity: 64, allocator: allocator)
        #expect(address(next) != storage)
        #expect(next.capacity <= BatchBuffer.keptCapacity)
    }
}
