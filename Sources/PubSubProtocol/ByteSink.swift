/// A growable byte array for building frames: appends are a bounds check and a store, with
/// none of `Array`'s uniqueness checks. It has reference storage and is meant to be used in
/// place (as `JSONWriter`'s buffer), never copied and appended to from both copies.
struct ByteSink {
    private var storage: ManagedBuffer<Void, UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 32)
        self.storage = ManagedBuffer<Void, UInt8>.create(minimumCapacity: self.capacity) { _ in () }
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        if count == capacity { grow(minimum: count + 1) }
        let index = count
        storage.withUnsafeMutablePointerToElements { $0[index] = byte }
        count += 1
    }

    @inline(__always)
    mutating func append(contentsOf bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if count + bytes.count > capacity { grow(minimum: count + bytes.count) }
        let index = count
        storage.withUnsafeMutablePointerToElements { ($0 + index).update(from: base.assumingMemoryBound(to: UInt8.self), count: bytes.count) }
        count += bytes.count
    }

    @inline(__always)
    mutating func append(contentsOf bytes: UnsafeBufferPointer<UInt8>) {
        append(contentsOf: UnsafeRawBufferPointer(bytes))
    }

    mutating func append(contentsOf string: String) {
        var string = string
        string.withUTF8 { append(contentsOf: UnsafeRawBufferPointer($0)) }
    }

    private mutating func grow(minimum: Int) {
        let newCapacity = max(capacity * 2, minimum)
        let newStorage = ManagedBuffer<Void, UInt8>.create(minimumCapacity: newCapacity) { _ in () }
        let count = self.count
        storage.withUnsafeMutablePointerToElements { old in
            newStorage.withUnsafeMutablePointerToElements { $0.update(from: old, count: count) }
        }
        storage = newStorage
        capacity = newCapacity
    }

    /// Forgets the contents and keeps the storage.
    mutating func removeAll() {
        count = 0
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeMutablePointerToElements { try body(UnsafeRawBufferPointer(start: $0, count: count)) }
    }
}
