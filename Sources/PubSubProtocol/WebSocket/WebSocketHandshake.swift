import PubSubCore

/// The handshake headers of a client's WebSocket upgrade request (RFC 6455 4.1, 4.2.1, 9.1),
/// checked before anything is negotiated: a request that gets them wrong is answered 400.
///
///     let offers = try WebSocketHandshake.check(keys: ["dGhlIHNhbXBsZSBub25jZQ=="], versions: ["13"], extensions: [])
///     let deflate = PerMessageDeflate.negotiate(offers: offers)
public enum WebSocketHandshake {
    /// The only protocol version the server speaks; a 400 says so in `Sec-WebSocket-Version`.
    public static let version = "13"

    /// Checks that there is exactly one `Sec-WebSocket-Key`, the base64 of 16 bytes, and exactly
    /// one `Sec-WebSocket-Version`, 13, and parses every `Sec-WebSocket-Extensions` line into the
    /// client's offers, in order.
    /// - Throws: ``PubSubError`` `BAD_REQUEST` naming the header that is wrong.
    public static func check(keys: [String], versions: [String], extensions: [String]) throws(PubSubError) -> [WebSocketExtension] {
        guard keys.count == 1 else {
            throw .badRequest(keys.isEmpty ? "Sec-WebSocket-Key is missing" : "Sec-WebSocket-Key appears more than once")
        }
        guard isValidKey(keys[0]) else { throw .badRequest("Sec-WebSocket-Key must be the base64 encoding of 16 bytes") }
        guard versions.count == 1 else {
            throw .badRequest(versions.isEmpty ? "Sec-WebSocket-Version is missing" : "Sec-WebSocket-Version appears more than once")
        }
        guard trimmed(versions[0]) == version else { throw .badRequest("Sec-WebSocket-Version must be \(version)") }
        var offers: [WebSocketExtension] = []
        for line in extensions { offers += try WebSocketExtension.parseList(line) }
        return offers
    }

    /// 16 bytes in base64: 22 characters of the alphabet and `==` (RFC 6455 4.1, item 7).
    static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(trimmed(key).utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        // The last character before the padding holds 2 bits of data: its 4 low bits are zero.
        guard let last = base64Value(bytes[21]), last & 0x0F == 0 else { return false }
        return bytes[..<21].allSatisfy { base64Value($0) != nil }
    }

    private static func base64Value(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }

    private static func trimmed(_ value: String) -> Substring {
        var text = Substring(value)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}

/// One extension a client offers in `Sec-WebSocket-Extensions`, with its parameters in order.
///
///     let offers = try WebSocketExtension.parseList("permessage-deflate; client_max_window_bits, x-webkit-deflate-frame")
///     offers[0].parameters[0].name  // "client_max_window_bits"
public struct WebSocketExtension: Equatable, Sendable {
    public struct Parameter: Equatable, Sendable {
        public var name: String
        /// The value, unquoted; nil for a parameter given without `=`.
        public var value: String?

        public init(_ name: String, _ value: String? = nil) {
            self.name = name
            self.value = value
        }
    }

    public var name: String
    public var parameters: [Parameter]

    public init(_ name: String, _ parameters: [Parameter] = []) {
        self.name = name
        self.parameters = parameters
    }

    /// Parses one header line by the grammar of RFC 6455 9.1 (a comma-separated list; empty
    /// elements are skipped, as RFC 9110 5.6.1 has recipients do):
    ///
    ///     extension = token *( OWS ";" OWS token [ OWS "=" OWS ( token / quoted-string ) ] )
    ///
    /// - Throws: ``PubSubError`` `BAD_REQUEST` for anything else: a parameter with no name, a
    ///   `=` with no value, an unterminated quote, a character outside a token.
    public static func parseList(_ header: String) throws(PubSubError) -> [WebSocketExtension] {
        var scanner = Scanner(bytes: Array(header.utf8))
        var result: [WebSocketExtension] = []
        while true {
            scanner.skipSpaces()
            if scanner.atEnd { return result }
            if scanner.take(",") { continue }  // an empty element
            var offer = WebSocketExtension(try scanner.token("an extension name"))
            scanner.skipSpaces()
            while scanner.take(";") {
                scanner.skipSpaces()
                let name = try scanner.token("a parameter name")
                scanner.skipSpaces()
                var value: String?
                if scanner.take("=") {
                    scanner.skipSpaces()
                    value = scanner.peek == UInt8(ascii: "\"") ? try scanner.quotedString() : try scanner.token("a parameter value")
                    scanner.skipSpaces()
                }
                offer.parameters.append(Parameter(name, value))
            }
            result.append(offer)
            if scanner.atEnd { return result }
            guard scanner.take(",") else { throw scanner.unexpected("',' or ';'") }
        }
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        var atEnd: Bool { index == bytes.count }
        var peek: UInt8? { atEnd ? nil : bytes[index] }

        mutating func skipSpaces() {
            while let byte = peek, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { index += 1 }
        }

        mutating func take(_ character: Unicode.Scalar) -> Bool {
            guard peek == UInt8(ascii: character) else { return false }
            index += 1
            return true
        }

        mutating func token(_ what: String) throws(PubSubError) -> String {
            let start = index
            while let byte = peek, Self.isTokenByte(byte) { index += 1 }
            guard index > start else { throw unexpected(what) }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        /// `"…"` with `\` escapes; RFC 6455 9.1 has the unquoted value be a token too.
        mutating func quotedString() throws(PubSubError) -> String {
            index += 1  // the opening quote
            var value: [UInt8] = []
            while let byte = peek {
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard !value.isEmpty, value.allSatisfy(Self.isTokenByte) else {
                        throw .badRequest("Sec-WebSocket-Extensions: a quoted parameter value must be a token")
                    }
                    return String(decoding: value, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let escaped = peek else { break }
                    index += 1
                    value.append(escaped)
                default:
                    value.append(byte)
                }
            }
            throw .badRequest("Sec-WebSocket-Extensions: unterminated quoted string")
        }

        func unexpected(_ what: String) -> PubSubError {
            let found = peek.map { "'\(Unicode.Scalar($0).escaped(asASCII: true))'" } ?? "the end"
            return .badRequest("Sec-WebSocket-Extensions: expected \(what) at offset \(index), found \(found)")
        }

        /// RFC 9110 5.6.2 `tchar`.
        static func isTokenByte(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
                UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
                UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
                true
            default:
                false
            }
        }
    }
}
