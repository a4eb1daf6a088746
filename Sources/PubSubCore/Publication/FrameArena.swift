import NIOCore

/// Where a topic's encoders write the frames of its publications: one after another into a
/// shared chunk, each handed out as a slice of it, so a busy topic's frame costs no allocation
/// of its own (a `ByteBuffer` of its own is two: its storage object and its bytes).
///
///     let frame = arena.frame(capacity: 512, now: now) { region in
///         JSONWriter.frame(in: region, estimatedSize: 498) { … }   // bytes written, nil if too small
///     } ?? encoder.encode(publication)
///
/// A slice keeps its whole chunk alive, so chunks stay small where that would waste memory:
/// a topic publishing slowly gets chunks of one frame (as if it had no arena); a chunk twice
/// the size of the last follows only one filled within ``hotMillis`` of its start, up to
/// ``maxChunk``. The queues and the history hold consecutive publications of a topic, so what
/// they keep alive beyond their own frames is at most the partly used chunks at either end.
///
/// Not thread-safe: each topic owns one and uses it under its lock.
public struct FrameArena {
    /// The largest chunk; frames larger than a quarter of it get a buffer of their own.
    public static let maxChunk = 16_384
    /// A chunk filled within this many milliseconds of its start makes the next twice as large.
    public static let hotMillis: Int64 = 50

    /// The current chunk (none yet: an empty buffer). Its writer index is the end of the last
    /// frame handed out; the bytes after it belong to no slice. Not optional: reading an
    /// optional's value would copy (retain and release) the buffer on every frame.
    private var chunk = ByteBuffer()
    private var chunkStartedAt: Int64 = 0

    public init() {}

    /// The frame `write` puts into a region of at least `capacity` bytes (returning how many it
    /// wrote), as a slice of the current chunk; nil, with nothing handed out, when `write`
    /// returns nil (its frame did not fit) or the frame is too large to share a chunk.
    public mutating func frame(capacity: Int, now: Int64, _ write: (UnsafeMutableRawBufferPointer) -> Int?) -> ByteBuffer? {
        guard capacity <= Self.maxChunk / 4 else { return nil }
        if chunk.writableBytes < capacity { startChunk(capacity: capacity, now: now) }
        let start = chunk.writerIndex
        // The chunk's storage is shared with the slices handed out, so a mutating access would
        // copy it; the bytes from the writer index on are in no slice, and nobody else reads
        // or writes them, so they are written through the storage's address instead.
        let written: Int? = chunk.withVeryUnsafeBytes { storage in
            let region = UnsafeMutableRawBufferPointer(mutating: UnsafeRawBufferPointer(rebasing: storage[start..<(start + capacity)]))
            return write(region)
        }
        guard let written else { return nil }
        chunk.moveWriterIndex(forwardBy: written)
        return chunk.getSlice(at: start, length: written)
    }

    /// Replaces the current chunk (which its slices keep alive as long as they need it).
    private mutating func startChunk(capacity: Int, now: Int64) {
        var size = capacity
        if chunk.capacity > 0, now - chunkStartedAt < Self.hotMillis {
            size = max(capacity, min(Self.maxChunk, chunk.capacity * 2))
        }
        chunk = ByteBufferAllocator().buffer(capacity: size)
        chunkStartedAt = now
    }

    /// Bytes of the current chunk (tests).
    var chunkCapacity: Int { chunk.capacity }
}
