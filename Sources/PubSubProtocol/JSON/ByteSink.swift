/// A growable byte array for building frames: appends are a bounds check and a store, with
/// none of `Array`'s or `ByteBuffer`'s uniqueness checks.
///
/// It writes either into its own storage or into a region the caller lends it (the writable
/// bytes of the `ByteBuffer` the frame is going to): then a frame is built in place, with no
/// allocation or copy, and only if the region turns out too small does the sink move to its
/// own storage. It has reference storage and is meant to be used in place (as `JSONWriter`'s
/// buffer), never copied and appended to from both copies.
struct ByteSink {
    /// Owns the bytes unless the sink is still in a lent region.
    private var owner: SinkStorage?
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        let storage = SinkStorage(capacity: max(capacity, 32))
        owner = storage
        base = storage.base
        self.capacity = storage.capacity
    }

    /// Writes into `region`, which must stay valid while the sink is used in it.
    init(region: UnsafeMutableRawBufferPointer) {
        owner = nil
        base = region.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafeMutablePointer(bitPattern: 1)!
        capacity = region.count
    }

    /// Whether every byte so far is in the lent region (it never overflowed).
    var isInRegion: Bool { owner == nil }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        if count == capacity { grow(minimum: count + 1) }
        base[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func append(contentsOf bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        if count + bytes.count > capacity { grow(minimum: count + bytes.count) }
        Self.copy(to: UnsafeMutableRawPointer(base + count), from: source, count: bytes.count)
        count += bytes.count
    }

    /// Copies `count` (> 0) bytes: short runs inline, longer ones by `memmove`. Also what
    /// ``NativeEventFrame`` writes an event's parts with.
    @inline(__always)
    static func copy(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int) {
        if count <= 32 {
            copySmall(to: destination, from: source, count: count)
        } else {
            destination.copyMemory(from: source, byteCount: count)
        }
    }

    /// Copies 1 to 32 bytes inline as two overlapping loads and stores of the widest size that
    /// fits: a frame's literals, quotes' contents and timestamps are this short, and a call to
    /// `memmove` for each cost more than the copy.
    @inline(__always)
    private static func copySmall(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int) {
        @inline(__always) func pair<T>(_: T.Type) {
            let first = source.loadUnaligned(as: T.self)
            let last = source.loadUnaligned(fromByteOffset: count - MemoryLayout<T>.size, as: T.self)
            destination.storeBytes(of: first, as: T.self)
            destination.storeBytes(of: last, toByteOffset: count - MemoryLayout<T>.size, as: T.self)
        }
        switch count {
        case 16...: pair(SIMD16<UInt8>.self)
        case 8...: pair(UInt64.self)
        case 4...: pair(UInt32.self)
        case 2...: pair(UInt16.self)
        default: destination.storeBytes(of: source.load(as: UInt8.self), as: UInt8.self)
        }
    }

    /// Appends `count` bytes that `write` stores at the address it is given.
    @inline(__always)
    mutating func append(count: Int, _ write: (UnsafeMutableRawPointer) -> Void) {
        if self.count + count > capacity { grow(minimum: self.count + count) }
        write(UnsafeMutableRawPointer(base + self.count))
        self.count += count
    }

    @inline(__always)
    mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) {
        append(contentsOf: UnsafeRawBufferPointer(bytes))
    }

    mutating func append(contentsOf string: String) {
        Self.withBytes(of: string) { append(contentsOf: $0) }
    }

    /// Lends `body` the UTF-8 bytes of `string`: native strings (small ones too) lend their
    /// own, with no copy of the string to retain.
    @inline(__always)
    static func withBytes<R>(of string: String, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if let result = string.utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) { return result }
        var string = string
        return string.withUTF8 { body(UnsafeRawBufferPointer($0)) }
    }

    private mutating func grow(minimum: Int) {
        let storage = SinkStorage(capacity: max(capacity * 2, minimum, 64))
        storage.base.update(from: base, count: count)
        owner = storage
        base = storage.base
        capacity = storage.capacity
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(owner) { try body(UnsafeRawBufferPointer(start: base, count: count)) }
    }
}

/// A sink's own bytes.
final class SinkStorage {
    let base: UnsafeMutablePointer<UInt8>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    deinit {
        base.deallocate()
    }
}
