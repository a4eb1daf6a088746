/// Generates UUID v4 strings for messages that do not bring their own id.
///
/// A fast non-cryptographic generator (xoshiro256**) seeded from the system's random source:
/// ids must be unique, not unpredictable, and a `getrandom` call per publish costs too much.
/// Not thread-safe: each topic owns one and uses it under its lock.
struct MessageIDGenerator {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    init() {
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

    /// A lowercase RFC 4122 version-4 UUID, e.g. `0f8fad5b-d9cb-469f-a165-70867728950e`.
    mutating func uuidString() -> String {
        var hi = next()
        var lo = next()
        hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000  // version 4
        lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // variant 10
        return String(unsafeUninitializedCapacity: 36) { buffer in
            let hex: StaticString = "0123456789abcdef"
            var index = 0
            func put(_ value: UInt64, nibbles: Int, _ buffer: UnsafeMutableBufferPointer<UInt8>, _ index: inout Int) {
                var shift = (nibbles - 1) * 4
                while shift >= 0 {
                    buffer[index] = hex.utf8Start[Int((value >> UInt64(shift)) & 0xF)]
                    index += 1
                    shift -= 4
                }
            }
            put(hi >> 32, nibbles: 8, buffer, &index)
            buffer[index] = UInt8(ascii: "-"); index += 1
            put(hi >> 16, nibbles: 4, buffer, &index)
            buffer[index] = UInt8(ascii: "-"); index += 1
            put(hi, nibbles: 4, buffer, &index)
            buffer[index] = UInt8(ascii: "-"); index += 1
            put(lo >> 48, nibbles: 4, buffer, &index)
            buffer[index] = UInt8(ascii: "-"); index += 1
            put(lo, nibbles: 12, buffer, &index)
            return 36
        }
    }

    /// A random hex id of 16 characters, used for topic epochs.
    mutating func shortID() -> String {
        let value = next()
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
