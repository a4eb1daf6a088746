/// Numbers: scanning one as JSON spells it, and reading a non-negative integer.
extension JSONScanner {
    mutating func scanNumber() throws(JSONError) {
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), Self.isDigit(first) else { throw fail("invalid number") }
        if first == UInt8(ascii: "0") {
            index += 1
        } else {
            while let b = peek(), Self.isDigit(b) { index += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let b = peek(), Self.isDigit(b) else { throw fail("invalid number") }
            while let b = peek(), Self.isDigit(b) { index += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard let b = peek(), Self.isDigit(b) else { throw fail("invalid number") }
            while let b = peek(), Self.isDigit(b) { index += 1 }
        }
    }

    @inline(__always)
    static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    /// Parses a number slice as a non-negative integer, or nil if it is not one.
    public static func decodeUInt(_ raw: UnsafeRawBufferPointer) -> UInt64? {
        guard !raw.isEmpty, raw.count <= 19 else { return nil }
        var value: UInt64 = 0
        for byte in raw {
            guard isDigit(byte) else { return nil }
            value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
        }
        return value
    }
}
