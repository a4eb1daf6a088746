/// The short cut for the publish frame as clients write it; the general scan in
/// JSONScanner.swift decides whatever this does not accept.
extension JSONScanner {
    /// A publish frame as clients write it, `{"type":"publish","topic":"…","message":…}` with no
    /// whitespace, then any of `,"ack":true|false` and `,"request_id":"…"` before the closing
    /// brace: its fixed parts are compared as words and only its values are scanned, where the
    /// general scan looks at every member name, colon and comma, much of the work of decoding
    /// a publish frame. The message value is scanned as the general scan does, and the table
    /// gets the same entries. Anything else (another order or member,
    /// whitespace, an error) resets the scanner and returns false: the general scan then
    /// decides, and reports any error, so this path never accepts what it would not.
    mutating func publishInUsualOrder(into table: inout JSONFieldTable) -> Bool {
        let head: StaticString = #"{"type":"publish","topic":""#
        let headCount = head.utf8CodeUnitCount
        guard bytes.count > headCount + 12, Self.equal(bytes.base, head) else { return false }
        do throws(JSONError) {
            // `"publish"` lies after `{"type":`; the topic's opening quote ends the head.
            table[.type] = JSONSlice(kind: .string, range: 8..<17)
            index = headCount - 1
            let topicStart = index
            _ = try scanString()
            table[.topic] = JSONSlice(kind: .string, range: topicStart..<index)
            guard literal(#","message":"#) else { return reset(&table) }
            try messageValue(depth: 1, into: &table)
            while index < bytes.count - 1 {
                if literal(#","ack":true"#) {
                    table[.ack] = JSONSlice(kind: .bool, range: (index - 4)..<index)
                } else if literal(#","ack":false"#) {
                    table[.ack] = JSONSlice(kind: .bool, range: (index - 5)..<index)
                } else if literal(#","request_id":"#), peek() == UInt8(ascii: "\"") {
                    let start = index
                    _ = try scanString()
                    table[.requestID] = JSONSlice(kind: .string, range: start..<index)
                } else {
                    return reset(&table)
                }
            }
            guard index == bytes.count - 1, bytes[index] == UInt8(ascii: "}") else { return reset(&table) }
            index = bytes.count
            return true
        } catch {
            return reset(&table)
        }
    }

    /// Whether `text` comes next (then it is passed over).
    @inline(__always)
    private mutating func literal(_ text: StaticString) -> Bool {
        guard bytes.count - index >= text.utf8CodeUnitCount, Self.equal(bytes.base + index, text) else { return false }
        index += text.utf8CodeUnitCount
        return true
    }

    /// Back to the start, as if nothing had been scanned; returns false.
    private mutating func reset(_ table: inout JSONFieldTable) -> Bool {
        table = JSONFieldTable()
        index = 0
        stringBits = 0
        lastStringHadEscapes = false
        return false
    }
}
