/// Comparing input bytes with a known literal (member names, command names, the fixed parts
/// of a publish frame) as words.
extension JSONScanner {
    /// Whether the `key.utf8CodeUnitCount` bytes at `pointer` are `key`'s. Names of 2 to 16
    /// bytes are compared as two overlapping words (the first and the last of the widest size
    /// that fits), which the compiler turns into two compares with constants; longer literals
    /// word by word, then the same. A byte loop, as before, cost several times that for every
    /// member name, and a call to `memcmp` more.
    @inline(__always)
    public static func equal(_ pointer: UnsafeRawPointer, _ key: StaticString) -> Bool {
        let literal = UnsafeRawPointer(key.utf8Start)
        let count = key.utf8CodeUnitCount
        @inline(__always) func same<Word: FixedWidthInteger>(_: Word.Type) -> Bool {
            let last = count - MemoryLayout<Word>.size
            return pointer.loadUnaligned(as: Word.self) == literal.loadUnaligned(as: Word.self)
                && pointer.loadUnaligned(fromByteOffset: last, as: Word.self) == literal.loadUnaligned(fromByteOffset: last, as: Word.self)
        }
        switch count {
        case 17...:
            // Word by word, the last word overlapping the one before.
            var offset = 0
            while offset < count - 8 {
                guard pointer.loadUnaligned(fromByteOffset: offset, as: UInt64.self) == literal.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else { return false }
                offset += 8
            }
            return same(UInt64.self)
        case 8...16: return same(UInt64.self)
        case 4...7: return same(UInt32.self)
        case 2...3: return same(UInt16.self)
        default:
            for offset in 0..<count where pointer.load(fromByteOffset: offset, as: UInt8.self) != literal.load(fromByteOffset: offset, as: UInt8.self) {
                return false
            }
            return true
        }
    }
}
