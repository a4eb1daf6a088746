import NIOCore
import Testing

@testable import PubSubCore

@Suite("Frame arena")
struct FrameArenaTests {
    /// Writes `text` through the arena as one frame of `capacity` bytes.
    private func frame(_ arena: inout FrameArena, _ text: String, capacity: Int = 64, now: Int64) -> ByteBuffer? {
        arena.frame(capacity: capacity, now: now) { region in
            let bytes = Array(text.utf8)
            guard bytes.count <= region.count else { return nil }
            region.copyBytes(from: bytes)
            return bytes.count
        }
    }

    @Test func framesOfABusyTopicShareGrowingChunksAndKeepTheirBytes() throws {
        var arena = FrameArena()
        var frames: [ByteBuffer] = []
        var capacities: [Int] = []
        for index in 0..<2_000 {
            frames.append(try #require(frame(&arena, "frame \(index)", now: 1_000)))
            capacities.append(arena.chunkCapacity)
        }
        // Every frame still reads as written: later frames went after it, never over it.
        for (index, frame) in frames.enumerated() {
            #expect(frame.getString(at: frame.readerIndex, length: frame.readableBytes) == "frame \(index)")
        }
        #expect(capacities.first! < 256)
        #expect(capacities.max()! > 4_096)
        #expect(capacities.max()! <= FrameArena.maxChunk)
        // Most frames start right where the one before ended, in the same chunk.
        func address(_ frame: ByteBuffer) -> UInt { frame.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } }
        let adjacent = (1..<frames.count).filter { address(frames[$0]) == address(frames[$0 - 1]) + UInt(frames[$0 - 1].readableBytes) }
        #expect(adjacent.count > frames.count * 9 / 10)
    }

    @Test func aSlowTopicGetsAChunkPerFrame() throws {
        var arena = FrameArena()
        for index in 0..<20 {
            let now = Int64(index) * (FrameArena.hotMillis + 1)
            _ = try #require(frame(&arena, "slow \(index)", now: now))
            // A chunk no larger than the frame asked for (as rounded up by the allocator).
            #expect(arena.chunkCapacity <= 64)
        }
    }

    @Test func aFrameThatDoesNotFitHandsOutNothing() throws {
        var arena = FrameArena()
        let first = try #require(frame(&arena, "first", now: 0))
        #expect(frame(&arena, String(repeating: "x", count: 65), capacity: 64, now: 0) == nil)
        let second = try #require(frame(&arena, "second", now: 0))
        #expect(first.getString(at: first.readerIndex, length: first.readableBytes) == "first")
        #expect(second.getString(at: second.readerIndex, length: second.readableBytes) == "second")
        // Frames too large to share a chunk are left to the encoder's own buffer.
        #expect(frame(&arena, "big", capacity: FrameArena.maxChunk, now: 0) == nil)
    }
}
