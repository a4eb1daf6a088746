/// Strings: scanning one (escapes checked, 8 bytes at a time) and decoding its contents.
extension JSONScanner {
    /// Scans a string starting at its opening quote; returns the range between the quotes.
    /// Validates escapes and rejects raw control characters; UTF-8 validity is the frame
    /// decoder's job (text frames) or checked by `decodeString`.
    @inline(__always)
    mutating func scanString() throws(JSONError) -> Range<Int> {
        // The position in a local, stored back once: the loop reads and advances a register.
        var i = index + 1
        let start = i
        let count = bytes.count
        lastStringHadEscapes = false
        // Every byte is in a word read here or is looked at alone below: OR-ed into `bits`.
        var bits: UInt64 = 0
        while i < count {
            // Skip 8 plain bytes at a time, then straight to the first quote, backslash or
            // control character, which is looked at below.
            while i &+ 8 <= count {
                let word = bytes.word(at: i)
                bits |= word
                let mask = Self.attentionMask(word)
                if mask != 0 {
                    i &+= mask.trailingZeroBitCount &>> 3
                    break
                }
                i &+= 8
            }
            guard i < count else { break }
            let byte = bytes[i]
            if byte == UInt8(ascii: "\"") {
                index = i &+ 1
                stringBits |= bits
                return start..<i
            }
            if byte == UInt8(ascii: "\\") {
                lastStringHadEscapes = true
                i &+= 1
                guard i < count else { break }
                switch bytes[i] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i &+= 1
                case UInt8(ascii: "u"):
                    index = i
                    guard i + 4 < count else { throw fail("truncated \\u escape") }
                    for offset in 1...4 where Self.hexValue(bytes[i + offset]) == nil {
                        throw fail("invalid \\u escape")
                    }
                    i &+= 5
                default:
                    index = i
                    throw fail("invalid escape in string")
                }
                continue
            }
            if byte < 0x20 {
                index = i
                throw fail("control character in string")
            }
            bits |= UInt64(byte)
            i &+= 1
        }
        index = i
        throw fail("unterminated string")
    }

    /// High bits set in the bytes of `word` (little-endian: first byte lowest) that may be `"`,
    /// `\\` or below 0x20. Bytes above the lowest flagged one may be false positives; the lowest
    /// flagged byte is always a real one, and no real one goes unflagged.
    @inline(__always)
    static func attentionMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        @inline(__always) func zeroBytes(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & highs }
        let quote = zeroBytes(word ^ (ones &* 0x22))
        let backslash = zeroBytes(word ^ (ones &* 0x5C))
        let control = (word &- ones &* 0x20) & ~word & highs
        return quote | backslash | control
    }

    static func hexValue(_ b: UInt8) -> UInt32? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    // MARK: decoding scalars

    /// Decodes the contents of a string (between its quotes), resolving escapes.
    public static func decodeString(_ raw: UnsafeRawBufferPointer) throws(JSONError) -> String {
        if !raw.contains(UInt8(ascii: "\\")) {
            // ASCII (the usual topic, type and id) needs no validation, and this is much cheaper.
            if !raw.contains(where: { $0 >= 0x80 }) { return asciiString(raw) }
            guard let string = String(validating: raw, as: UTF8.self) else {
                throw JSONError(description: "invalid JSON: string is not valid UTF-8")
            }
            return string
        }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hex4(_ at: Int) -> UInt32 {
            var value: UInt32 = 0
            for offset in 0..<4 { value = value << 4 | (hexValue(raw[at + offset]) ?? 0) }
            return value
        }
        while i < raw.count {
            let byte = raw[i]
            guard byte == UInt8(ascii: "\\") else { out.append(byte); i += 1; continue }
            let escape = raw[i + 1]
            i += 2
            switch escape {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(i)
                i += 4
                if (0xD800...0xDBFF).contains(scalar), i + 5 < raw.count + 0, raw[i] == UInt8(ascii: "\\"),
                    raw[i + 1] == UInt8(ascii: "u")
                {
                    let low = hex4(i + 2)
                    if (0xDC00...0xDFFF).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                let unicode = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: String(Character(unicode)).utf8)
            default: out.append(escape)  // " \ /
            }
        }
        guard let string = String(validating: out, as: UTF8.self) else {
            throw JSONError(description: "invalid JSON: string is not valid UTF-8")
        }
        return string
    }

    /// A `String` of bytes known to be ASCII.
    @inline(__always)
    static func asciiString(_ raw: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: raw.count) { out in
            UnsafeMutableRawBufferPointer(out).copyMemory(from: raw)
            return raw.count
        }
    }
}
