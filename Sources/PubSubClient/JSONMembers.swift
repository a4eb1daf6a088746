import Foundation

/// The top-level members of one JSON object, each kept as the raw text of its value.
///
/// The client reads the server's frames with this rather than `JSONSerialization`, so that an
/// event's payload reaches the application byte for byte as it was published (a decode and
/// re-encode would reorder keys and reformat numbers). Values are decoded on demand.
struct JSONMembers {
    private let bytes: [UInt8]
    private var ranges: [String: Range<Int>] = [:]

    /// nil when `text` is not a JSON object.
    init?(_ text: String) {
        self.init(bytes: Array(text.utf8))
    }

    private init?(bytes: [UInt8]) {
        self.bytes = bytes
        var reader = JSONSkipper(bytes: bytes)
        reader.skipWhitespace()
        guard reader.consume(UInt8(ascii: "{")) else { return nil }
        reader.skipWhitespace()
        if reader.consume(UInt8(ascii: "}")) { return }
        while true {
            reader.skipWhitespace()
            let keyStart = reader.index
            guard reader.skipString() else { return nil }
            guard let key = JSONMembers.decodeString(bytes[keyStart..<reader.index]) else { return nil }
            reader.skipWhitespace()
            guard reader.consume(UInt8(ascii: ":")) else { return nil }
            reader.skipWhitespace()
            let valueStart = reader.index
            guard reader.skipValue() else { return nil }
            ranges[key] = valueStart..<reader.index
            reader.skipWhitespace()
            if reader.consume(UInt8(ascii: ",")) { continue }
            guard reader.consume(UInt8(ascii: "}")) else { return nil }
            return
        }
    }

    /// The value's JSON text, as it came.
    func raw(_ key: String) -> String? {
        ranges[key].map { String(decoding: bytes[$0], as: UTF8.self) }
    }

    func string(_ key: String) -> String? {
        ranges[key].flatMap { Self.decodeString(bytes[$0]) }
    }

    func int(_ key: String) -> Int? {
        ranges[key].flatMap { Int(String(decoding: bytes[$0], as: UTF8.self)) }
    }

    func bool(_ key: String) -> Bool? {
        switch raw(key) {
        case "true": true
        case "false": false
        default: nil
        }
    }

    func object(_ key: String) -> JSONMembers? {
        ranges[key].flatMap { JSONMembers(bytes: Array(bytes[$0])) }
    }

    /// A JSON string literal (with its quotes) to its value; escapes go through Foundation.
    private static func decodeString(_ literal: ArraySlice<UInt8>) -> String? {
        guard literal.count >= 2, literal.first == UInt8(ascii: "\""), literal.last == UInt8(ascii: "\"") else { return nil }
        if !literal.contains(UInt8(ascii: "\\")) {
            return String(decoding: literal.dropFirst().dropLast(), as: UTF8.self)
        }
        return (try? JSONSerialization.jsonObject(with: Data(literal), options: .fragmentsAllowed)) as? String
    }
}

/// Steps over one JSON value without building it: enough structure to find where it ends.
/// The text comes from the server, which writes valid JSON; what is not is refused, not guessed.
struct JSONSkipper {
    let bytes: [UInt8]
    var index = 0
    private var depth = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    mutating func skipString() -> Bool {
        guard consume(UInt8(ascii: "\"")) else { return false }
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                return true
            case UInt8(ascii: "\\"):
                index += 2
            default:
                index += 1
            }
        }
        return false
    }

    mutating func skipValue() -> Bool {
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            return skipString()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            return skipContainer()
        default:
            let start = index
            while index < bytes.count, !Self.delimiters.contains(bytes[index]) { index += 1 }
            return index > start
        }
    }

    private static let delimiters: Set<UInt8> = [
        UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: ":"), 0x20, 0x09, 0x0A, 0x0D,
    ]

    private mutating func skipContainer() -> Bool {
        let close = bytes[index] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
        let isObject = close == UInt8(ascii: "}")
        depth += 1
        defer { depth -= 1 }
        guard depth <= 512 else { return false }
        index += 1
        skipWhitespace()
        if consume(close) { return true }
        while true {
            skipWhitespace()
            if isObject {
                guard skipString() else { return false }
                skipWhitespace()
                guard consume(UInt8(ascii: ":")) else { return false }
                skipWhitespace()
            }
            guard skipValue() else { return false }
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            return consume(close)
        }
    }
}

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            out += String(format: "\\u%04x", scalar.value)
        default:
            out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
