import NIOCore

/// Reads RESP2 values out of bytes as they arrive: a value split across reads is left in the
/// buffer, untouched, until the rest of it comes.
///
///     var parser = RESPParser()
///     while let value = try parser.parse(&buffer) { handle(value) }
///
/// Bytes from the network are not trusted: lengths, element counts and nesting are bounded, and
/// anything that is not RESP2 is an error (after which the connection is out of step and must
/// be closed).
public struct RESPParser: Sendable {
    /// The longest bulk string accepted (Redis's own limit is 512 MB).
    public var maxBulkLength: Int
    /// The most elements of one array.
    public var maxArrayCount: Int
    /// The deepest nesting of arrays.
    public var maxDepth: Int

    public init(maxBulkLength: Int = 512 << 20, maxArrayCount: Int = 1 << 24, maxDepth: Int = 32) {
        self.maxBulkLength = maxBulkLength
        self.maxArrayCount = maxArrayCount
        self.maxDepth = maxDepth
    }

    /// The next whole value, consumed from `buffer`; nil (and `buffer` as it was) while it is
    /// incomplete.
    public func parse(_ buffer: inout ByteBuffer) throws(RESPError) -> RESPValue? {
        var cursor = buffer
        guard let value = try parseValue(&cursor, depth: 0) else { return nil }
        buffer = cursor
        return value
    }

    private func parseValue(_ buffer: inout ByteBuffer, depth: Int) throws(RESPError) -> RESPValue? {
        guard let kind = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        guard let line = try Self.readLine(&buffer) else { return nil }
        let body = line.dropFirst()
        switch kind {
        case UInt8(ascii: "+"):
            return .simpleString(String(decoding: body, as: UTF8.self))
        case UInt8(ascii: "-"):
            return .error(String(decoding: body, as: UTF8.self))
        case UInt8(ascii: ":"):
            return .integer(try Self.integer(body))
        case UInt8(ascii: "$"):
            let length = try Self.integer(body)
            if length == -1 { return .bulkString(nil) }
            guard length >= 0, length <= maxBulkLength else { throw .malformed("bulk string length \(length)") }
            let count = Int(length)
            guard buffer.readableBytes >= count + 2 else { return nil }
            let bytes = buffer.readSlice(length: count)!
            guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\r"), buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\n") else {
                throw .malformed("bulk string not followed by CRLF")
            }
            return .bulkString(bytes)
        case UInt8(ascii: "*"):
            let count = try Self.integer(body)
            if count == -1 { return .array(nil) }
            guard count >= 0, count <= maxArrayCount else { throw .malformed("array count \(count)") }
            guard depth < maxDepth else { throw .malformed("arrays nested deeper than \(maxDepth)") }
            var elements: [RESPValue] = []
            // Reserved only as far as the bytes at hand could hold (each element takes 3 at least).
            elements.reserveCapacity(min(Int(count), buffer.readableBytes / 3))
            for _ in 0..<count {
                guard let element = try parseValue(&buffer, depth: depth + 1) else { return nil }
                elements.append(element)
            }
            return .array(elements)
        default:
            throw .malformed("unknown type byte \(kind)")
        }
    }

    /// The bytes up to CRLF (the type byte included), consumed with it; nil without a CRLF yet.
    private static func readLine(_ buffer: inout ByteBuffer) throws(RESPError) -> ByteBufferView? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")) else {
            if view.count > maxLineLength { throw .malformed("line longer than \(maxLineLength) bytes") }
            return nil
        }
        let length = cr - view.startIndex
        if length > maxLineLength { throw .malformed("line longer than \(maxLineLength) bytes") }
        guard buffer.readableBytes >= length + 2 else { return nil }
        guard view[cr + 1] == UInt8(ascii: "\n") else { throw .malformed("CR not followed by LF") }
        let line = buffer.readSlice(length: length)!.readableBytesView
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }

    /// Simple strings, errors and headers are short; a longer line is not a Redis server.
    static let maxLineLength = 64 * 1024

    private static func integer(_ bytes: ByteBufferView.SubSequence) throws(RESPError) -> Int64 {
        var digits = bytes[...]
        var negative = false
        if digits.first == UInt8(ascii: "-") {
            negative = true
            digits = digits.dropFirst()
        }
        guard !digits.isEmpty, digits.count <= 19 else { throw .malformed("not an integer") }
        var value: Int64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw .malformed("not an integer") }
            let (times, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = times.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflowA, !overflowB else { throw .malformed("integer out of range") }
            value = sum
        }
        return negative ? -value : value
    }
}

/// What goes wrong between this client and a Redis server.
public enum RESPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bytes are not RESP2: the connection is out of step and is closed.
    case malformed(String)
    /// The server answered with an error reply.
    case server(String)
    /// The connection closed (or could not open) before the answer came.
    case connectionClosed
    /// A `redis://` URL that cannot be used.
    case badURL(String)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed reply from Redis: \(why)"
        case .server(let message): "Redis: \(message)"
        case .connectionClosed: "the connection to Redis closed"
        case .badURL(let why): "bad Redis URL: \(why)"
        }
    }
}
