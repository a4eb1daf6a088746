/// A validating JSON scanner that finds values without building a tree: it reports each
/// value's kind and byte range, so a message payload can be passed through byte for byte and
/// only the few fields the server reads are decoded.
///
///     var table = JSONFieldTable()
///     var scanner = JSONScanner(bytes)
///     try scanner.topLevelObject(into: &table)   // table[.topic]: the topic's JSONSlice
public struct JSONSlice: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case object, array, string, number, bool, null }
    public let kind: Kind
    /// Byte range of the value's text in the scanned input.
    public let range: Range<Int>
}

/// Why a JSON text was rejected; the message names the position.
public struct JSONError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

public struct JSONScanner {
    static let maxDepth = 128

    private let bytes: Input
    private var index = 0
    /// Whether the string `scanString` last returned contains a backslash escape.
    private var lastStringHadEscapes = false
    /// The bytes of the strings scanned so far, OR-ed together as they pass (see `isASCII`).
    private var stringBits: UInt64 = 0

    /// After a scan that succeeded: whether every byte of the text is ASCII, so it is valid
    /// UTF-8 with no check of its own. Only strings may hold other bytes (anywhere else the
    /// scan fails on them), and the scan reads every byte of every string.
    var isASCII: Bool { stringBits & 0x8080_8080_8080_8080 == 0 }

    /// `bytes` must stay valid while the scanner is used.
    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = Input(bytes)
    }

    /// The input as a start address that is never nil and a count: `UnsafeRawBufferPointer`'s
    /// optional base address was tested again at every byte read (~10 % of a decode's
    /// instructions).
    private struct Input {
        let base: UnsafeRawPointer
        let count: Int

        init(_ bytes: UnsafeRawBufferPointer) {
            // An empty input is never read: any valid address does.
            base = bytes.baseAddress ?? UnsafeRawPointer(("" as StaticString).utf8Start)
            count = bytes.count
        }

        @inline(__always)
        subscript(offset: Int) -> UInt8 { base.load(fromByteOffset: offset, as: UInt8.self) }

        @inline(__always)
        subscript(range: Range<Int>) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
        }

        @inline(__always)
        func word(at offset: Int) -> UInt64 {
            UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        }
    }

    /// Parses the whole input as one JSON object, keeping in `table` the value of each member
    /// that has a ``JSONKey`` (and, of a `message` object, its `id` and `payload`): the fields
    /// the server reads come out of the pass that validates the object, and nothing is built.
    mutating func topLevelObject(into table: inout JSONFieldTable) throws(JSONError) {
        if publishInUsualOrder(into: &table) { return }
        try anyTopLevelObject(into: &table)
    }

    /// ``topLevelObject(into:)`` by the general scan alone (tests compare the two).
    mutating func anyTopLevelObject(into table: inout JSONFieldTable) throws(JSONError) {
        skipWhitespace()
        guard peek() == UInt8(ascii: "{") else {
            throw fail(index >= bytes.count ? "empty input: expected a JSON object" : "expected a JSON object")
        }
        try objectFields(depth: 1, into: &table)
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected data after the JSON object") }
    }

    /// A publish frame as clients write it, `{"type":"publish","topic":"…","message":…}` with no
    /// whitespace, then any of `,"ack":true|false` and `,"request_id":"…"` before the closing
    /// brace: its fixed parts are compared as words and only its values are scanned, where the
    /// general scan looks at every member name, colon and comma (a third fewer
    /// instructions to decode a publish frame of the benchmarks' shape: 2,826 -> 1,884). The message value is scanned as the general
    /// scan does, and the table gets the same entries. Anything else (another order or member,
    /// whitespace, an error) resets the scanner and returns false: the general scan then
    /// decides, and reports any error, so this path never accepts what it would not.
    private mutating func publishInUsualOrder(into table: inout JSONFieldTable) -> Bool {
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

    /// ``topLevelObject(into:)`` for the object `slice`, found by an earlier scan of the same
    /// bytes (a Phoenix message's payload).
    static func fields(of slice: JSONSlice, in bytes: UnsafeRawBufferPointer, into table: inout JSONFieldTable) throws(JSONError) {
        var scanner = JSONScanner(UnsafeRawBufferPointer(rebasing: bytes[..<slice.range.upperBound]))
        scanner.index = slice.range.lowerBound
        try scanner.objectFields(depth: 1, into: &table)
    }

    /// Whether the `key.utf8CodeUnitCount` bytes at `pointer` are `key`'s. Names of 2 to 16
    /// bytes are compared as two overlapping words (the first and the last of the widest size
    /// that fits), which the compiler turns into two compares with constants; longer literals
    /// word by word, then the same. A byte loop, as before, cost ~20 instructions a member
    /// name, and a call to `memcmp` more.
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

    /// Parses the whole input as one JSON array and returns its elements.
    public mutating func topLevelArray() throws(JSONError) -> [JSONSlice] {
        skipWhitespace()
        guard peek() == UInt8(ascii: "[") else {
            throw fail(index >= bytes.count ? "empty input: expected a JSON array" : "expected a JSON array")
        }
        index += 1
        var elements: [JSONSlice] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
        } else {
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: 1))
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { index += 1; continue }
                guard peek() == UInt8(ascii: "]") else { throw fail("expected ',' or ']' in array") }
                index += 1
                break
            }
        }
        skipWhitespace()
        guard index == bytes.count else { throw fail("unexpected data after the JSON array") }
        return elements
    }

    // MARK: values

    /// The members of the object at `index` (values `depth` levels down), each with a key
    /// kept in `table`; a `message` member's object value is parsed member by member, its `id`
    /// and `payload` kept too, instead of skipped over.
    private mutating func objectFields(depth: Int, into table: inout JSONFieldTable) throws(JSONError) {
        try forEachMember(JSONKey.init(member:)) { key, scanner throws(JSONError) in
            guard key == .message else {
                let value = try scanner.parseValue(depth: depth)
                if let key { table[key] = value }
                return
            }
            try scanner.messageValue(depth: depth, into: &table)
        }
    }

    /// The value of a `message` member (at `index`, `depth` levels down): an object is parsed
    /// member by member, its `id` and `payload` kept, instead of skipped over.
    @inline(__always)
    private mutating func messageValue(depth: Int, into table: inout JSONFieldTable) throws(JSONError) {
        var id: JSONSlice?
        var payload: JSONSlice?
        if peek() == UInt8(ascii: "{") {
            // Same depth rules as parseValue then skipObject: its values are one level down.
            let start = index
            try forEachMember(JSONKey.init(messageMember:)) { key, scanner throws(JSONError) in
                let value = try scanner.parseValue(depth: depth + 1)
                if key == .messageID { id = value } else if key == .messagePayload { payload = value }
            }
            table[.message] = JSONSlice(kind: .object, range: start..<index)
        } else {
            table[.message] = try parseValue(depth: depth)
        }
        table[.messageID] = id
        table[.messagePayload] = payload
    }

    /// Walks the members of the object at `index` to its end: for each, `value` gets the key
    /// `classify` gives its name (decoded first when it has escapes) with the scanner at the
    /// member's value, and must parse it.
    @inline(__always)
    private mutating func forEachMember(
        _ classify: (UnsafeRawBufferPointer) -> JSONKey?,
        _ value: (JSONKey?, inout JSONScanner) throws(JSONError) -> Void
    ) throws(JSONError) {
        index += 1  // {
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a member name in quotes") }
            let name = try scanString()
            let key: JSONKey?
            if lastStringHadEscapes {
                // Validates the escapes' UTF-8 now, as every other string is validated.
                var decoded = try Self.decodeString(bytes[name])
                key = decoded.withUTF8 { classify(UnsafeRawBufferPointer($0)) }
            } else {
                key = classify(bytes[name])
            }
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw fail("expected ':' after member name") }
            index += 1
            skipWhitespace()
            try value(key, &self)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return
            default: throw fail("expected ',' or '}' in object")
            }
        }
    }

    private mutating func parseValue(depth: Int) throws(JSONError) -> JSONSlice {
        guard depth < Self.maxDepth else { throw fail("JSON nested deeper than \(Self.maxDepth) levels") }
        let start = index
        guard let byte = peek() else { throw fail("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"):
            try skipObject(depth: depth + 1)
            return JSONSlice(kind: .object, range: start..<index)
        case UInt8(ascii: "["):
            try skipArray(depth: depth + 1)
            return JSONSlice(kind: .array, range: start..<index)
        case UInt8(ascii: "\""):
            _ = try scanString()
            return JSONSlice(kind: .string, range: start..<index)
        case UInt8(ascii: "t"):
            try expectLiteral(.true)
            return JSONSlice(kind: .bool, range: start..<index)
        case UInt8(ascii: "f"):
            try expectLiteral(.false)
            return JSONSlice(kind: .bool, range: start..<index)
        case UInt8(ascii: "n"):
            try expectLiteral(.null)
            return JSONSlice(kind: .null, range: start..<index)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try scanNumber()
            return JSONSlice(kind: .number, range: start..<index)
        default:
            throw fail("unexpected character")
        }
    }

    private mutating func skipObject(depth: Int) throws(JSONError) {
        index += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { index += 1; return }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a member name in quotes") }
            _ = try scanString()
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw fail("expected ':' after member name") }
            index += 1
            skipWhitespace()
            _ = try parseValue(depth: depth)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return
            default: throw fail("expected ',' or '}' in object")
            }
        }
    }

    private mutating func skipArray(depth: Int) throws(JSONError) {
        index += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { index += 1; return }
        while true {
            skipWhitespace()
            _ = try parseValue(depth: depth)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return
            default: throw fail("expected ',' or ']' in array")
            }
        }
    }

    /// Scans a string starting at its opening quote; returns the range between the quotes.
    /// Validates escapes and rejects raw control characters; UTF-8 validity is the frame
    /// decoder's job (text frames) or checked by `decodeString`.
    @inline(__always)
    private mutating func scanString() throws(JSONError) -> Range<Int> {
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

    private mutating func scanNumber() throws(JSONError) {
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

    /// `true`, `false` or `null` at `index` (its first byte already seen): compared as words,
    /// not byte by byte.
    private mutating func expectLiteral(_ literal: Literal) throws(JSONError) {
        let length = literal == .false ? 5 : 4
        guard index + length <= bytes.count else { throw fail("unexpected end of input") }
        let head = UInt32(littleEndian: bytes.base.loadUnaligned(fromByteOffset: index, as: UInt32.self))
        let matches: Bool = switch literal {
        case .true: head == 0x6575_7274  // "true"
        case .false: head == 0x736C_6166 && bytes[index + 4] == UInt8(ascii: "e")  // "fals" "e"
        case .null: head == 0x6C6C_756E  // "null"
        }
        guard matches else { throw fail("unexpected character") }
        index += length
    }

    private enum Literal { case `true`, `false`, null }

    @inline(__always)
    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    @inline(__always)
    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private func fail(_ message: String) -> JSONError {
        JSONError(description: "invalid JSON: \(message) at byte \(index)")
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

    @inline(__always)
    static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

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
