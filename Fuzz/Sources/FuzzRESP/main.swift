// The Redis client's RESP2 parser, on bytes as a Redis server (or anything at its address)
// might send them. Byte 0 picks where the bytes are cut into two reads; the rest is the stream.
//
// - Parsed whole, the stream gives values until one is incomplete or an error: never a crash.
// - Cut into two reads (the parser called on the first part, then on the rest appended), it
//   gives the same values and the same end (incomplete or error), as a connection sees it.
// - Each value written back as RESP parses to the same value, in exactly those bytes.
import FuzzSupport
import NIOCore
import RedisClient

enum End: Equatable { case incomplete, error }

/// Every value in `buffer`, and how the stream ended.
func parseAll(_ buffer: inout ByteBuffer, parser: RESPParser) -> ([RESPValue], End) {
    var values: [RESPValue] = []
    while true {
        do {
            guard let value = try parser.parse(&buffer) else { return (values, .incomplete) }
            values.append(value)
        } catch {
            return (values, .error)
        }
    }
}

/// The values of a stream read in two parts, as a connection's reads bring it.
func parseInTwoReads(_ bytes: [UInt8], cut: Int, parser: RESPParser) -> ([RESPValue], End) {
    var buffer = ByteBuffer(bytes: bytes[..<cut])
    var (values, end) = parseAll(&buffer, parser: parser)
    if end == .error { return (values, end) }
    buffer.writeBytes(bytes[cut...])
    let (more, last) = parseAll(&buffer, parser: parser)
    values += more
    end = last
    return (values, end)
}

func write(_ value: RESPValue, into buffer: inout ByteBuffer) {
    switch value {
    case .simpleString(let text): buffer.writeString("+\(text)\r\n")
    case .error(let text): buffer.writeString("-\(text)\r\n")
    case .integer(let number): buffer.writeString(":\(number)\r\n")
    case .bulkString(nil): buffer.writeString("$-1\r\n")
    case .bulkString(let bytes?):
        buffer.writeString("$\(bytes.readableBytes)\r\n")
        buffer.writeImmutableBuffer(bytes)
        buffer.writeString("\r\n")
    case .array(nil): buffer.writeString("*-1\r\n")
    case .array(let elements?):
        buffer.writeString("*\(elements.count)\r\n")
        for element in elements { write(element, into: &buffer) }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let cutByte = Int(input.byte())
    let bytes = input.rest
    // Small limits, so that they are reached too.
    let parser = RESPParser(maxBulkLength: 4096, maxArrayCount: 64, maxDepth: 8)
    var whole = ByteBuffer(bytes: bytes)
    let (values, end) = parseAll(&whole, parser: parser)
    let cut = bytes.isEmpty ? 0 : cutByte % (bytes.count + 1)
    let (split, splitEnd) = parseInTwoReads(bytes, cut: cut, parser: parser)
    require(split == values && splitEnd == end, "cut at \(cut): \(split.count) values (\(splitEnd)) against \(values.count) (\(end))")
    for value in values {
        var written = ByteBuffer()
        write(value, into: &written)
        // Simple strings and errors cannot hold CR or LF; the parser never gives them one.
        let expected = written.readableBytes
        do {
            let again = try parser.parse(&written)
            require(again == value, "written back, \(value) parses as \(String(describing: again))")
            require(written.readableBytes == 0, "written back, \(expected - written.readableBytes) of \(expected) bytes read")
        } catch {
            require(false, "written back, \(value) fails to parse: \(error)")
        }
    }
    return 0
}
