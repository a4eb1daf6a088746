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

    // The scan's state is internal, not private, only so that the scanner's extensions in
    // JSONScanner+*.swift (strings, numbers, the usual publish frame) can read and advance it.
    let bytes: Input
    var index = 0
    /// Whether the string `scanString` last returned contains a backslash escape.
    var lastStringHadEscapes = false
    /// The bytes of the strings scanned so far, OR-ed together as they pass (see `isASCII`).
    var stringBits: UInt64 = 0

    /// After a scan that succeeded: whether every byte of the text is ASCII, so it is valid
    /// UTF-8 with no check of its own. Only strings may hold other bytes (anywhere else the
    /// scan fails on them), and the scan reads every byte of every string.
    var isASCII: Bool { stringBits & 0x8080_8080_8080_8080 == 0 }

    /// `bytes` must stay valid while the scanner is used.
    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = Input(bytes)
    }

    /// The input as a start address that is never nil and a count: `UnsafeRawBufferPointer`'s
    /// optional base address was tested again at every byte read, a real share of a decode.
    struct Input {
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

    /// ``topLevelObject(into:)`` for the object `slice`, found by an earlier scan of the same
    /// bytes (a Phoenix message's payload).
    static func fields(of slice: JSONSlice, in bytes: UnsafeRawBufferPointer, into table: inout JSONFieldTable) throws(JSONError) {
        var scanner = JSONScanner(UnsafeRawBufferPointer(rebasing: bytes[..<slice.range.upperBound]))
        scanner.index = slice.range.lowerBound
        try scanner.objectFields(depth: 1, into: &table)
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
    mutating func messageValue(depth: Int, into table: inout JSONFieldTable) throws(JSONError) {
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
    func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    @inline(__always)
    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    func fail(_ message: String) -> JSONError {
        JSONError(description: "invalid JSON: \(message) at byte \(index)")
    }
}
