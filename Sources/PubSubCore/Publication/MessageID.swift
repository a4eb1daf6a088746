/// A message's id: a UUID v4 the server generated, kept as 128 bits and formatted only where it
/// is written (no string per publication), or the id the client chose.
public struct MessageID: Sendable, Equatable, CustomStringConvertible {
    enum Value: Sendable, Equatable {
        case uuid(UInt64, UInt64)
        case given(String)
    }

    let value: Value

    public init(_ string: String) {
        value = .given(string)
    }

    init(uuidHigh: UInt64, low: UInt64) {
        value = .uuid(uuidHigh, low)
    }

    /// Generated ids are hex and dashes: they never need JSON escaping.
    public var isGenerated: Bool {
        if case .uuid = value { return true }
        return false
    }

    public var utf8Count: Int {
        switch value {
        case .uuid: 36
        case .given(let string): string.utf8.count
        }
    }

    public var description: String {
        switch value {
        case .uuid: withUTF8 { String(decoding: $0, as: UTF8.self) }
        case .given(let string): string
        }
    }

    /// The id's UTF-8 bytes (a generated one is formatted on the stack).
    public func withUTF8<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        switch value {
        case .given(let string):
            var string = string
            return string.withUTF8 { body(UnsafeRawBufferPointer($0)) }
        case .uuid:
            var text: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)  // 40 bytes
            return withUnsafeMutableBytes(of: &text) { raw in
                _ = writeGenerated(to: raw.baseAddress!)
                return body(UnsafeRawBufferPointer(rebasing: raw[0..<36]))
            }
        }
    }

    /// Writes a generated id's 36 characters at `destination` and returns true; a given id
    /// writes nothing and returns false.
    /// Event frames write their ids this way, straight into the frame.
    public func writeGenerated(to destination: UnsafeMutableRawPointer) -> Bool {
        guard case .uuid(let hi, let lo) = value else { return false }
        // 8-4-4-4-12 hex digits: each group of eight is converted in one 64-bit word, and the
        // 4-digit groups are the halves of two such words.
        /// Digits 0–3 or 4–7 of a word of eight, as they lie in memory.
        func half(_ digits: UInt64, _ index: Int) -> UInt32 {
            withUnsafeBytes(of: digits) { $0.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self) }
        }
        let middle = Self.hexDigits(UInt32(truncatingIfNeeded: hi))
        let clock = Self.hexDigits(UInt32(truncatingIfNeeded: lo >> 32))
        destination.storeBytes(of: Self.hexDigits(UInt32(truncatingIfNeeded: hi >> 32)), as: UInt64.self)
        destination.storeBytes(of: half(middle, 0), toByteOffset: 9, as: UInt32.self)
        destination.storeBytes(of: half(middle, 1), toByteOffset: 14, as: UInt32.self)
        destination.storeBytes(of: half(clock, 0), toByteOffset: 19, as: UInt32.self)
        destination.storeBytes(of: half(clock, 1), toByteOffset: 24, as: UInt32.self)
        destination.storeBytes(of: Self.hexDigits(UInt32(truncatingIfNeeded: lo)), toByteOffset: 28, as: UInt64.self)
        destination.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 8, as: UInt8.self)
        destination.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 13, as: UInt8.self)
        destination.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 18, as: UInt8.self)
        destination.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 23, as: UInt8.self)
        return true
    }

    /// The eight lowercase hex digits of `value`, most significant first, in the bytes of a
    /// word as it lies in memory: each nibble is spread into a byte of its own, then all eight
    /// are turned into digits at once.
    @inline(__always)
    static func hexDigits(_ value: UInt32) -> UInt64 {
        var x = UInt64(value)
        x = ((x & 0xFFFF_0000) << 16) | (x & 0xFFFF)
        x = ((x & 0x0000_FF00_0000_FF00) << 8) | (x & 0x0000_00FF_0000_00FF)
        x = ((x & 0x00F0_00F0_00F0_00F0) << 4) | (x & 0x000F_000F_000F_000F)
        // Now byte i holds nibble i (counting from the least significant); 10...15 get the
        // distance from '9' + 1 to 'a' added.
        let letters = ((x &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        x = x &+ 0x3030_3030_3030_3030 &+ letters &* 39
        return x.bigEndian  // nibble 7 (the most significant) in the first byte
    }
}

/// Generates UUID v4 ids for messages that do not bring their own.
///
/// A fast non-cryptographic generator (xoshiro256**) seeded from the system's random source:
/// ids must be unique, not unpredictable, and a `getrandom` call per publish costs too much.
/// Not thread-safe: its owner (a memory topic, the Redis engine) uses it under its lock.
package struct MessageIDGenerator {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    package init() {
        var rng = SystemRandomNumberGenerator()
        repeat {
            s0 = rng.next()
            s1 = rng.next()
            s2 = rng.next()
            s3 = rng.next()
        } while s0 | s1 | s2 | s3 == 0
    }

    private mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always)
    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A new RFC 4122 version-4 UUID, kept as its 128 bits until it is written.
    package mutating func uuid() -> MessageID {
        let hi = (next() & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000  // version 4
        let lo = (next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // variant 10
        return MessageID(uuidHigh: hi, low: lo)
    }

    /// A lowercase UUID v4 string, e.g. `0f8fad5b-d9cb-469f-a165-70867728950e`.
    mutating func uuidString() -> String {
        uuid().description
    }

    /// A random hex id of 16 characters, used for topic epochs.
    package mutating func shortID() -> String {
        let value = next()
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
