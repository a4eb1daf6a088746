import NIOCore

/// Appends JSON text to a `ByteBuffer` by hand: the server's frames have fixed shapes, so
/// this is faster than a generic encoder and keeps member order stable for readers.
///
///     var json = JSONWriter(frame: true)
///     json.object { $0.member("type", "pong") }
///     let bytes = json.finish()   // a whole WebSocket text frame
public struct JSONWriter {
    public private(set) var buffer: ByteBuffer
    private let framed: Bool
    private var needsComma = false

    /// - Parameter frame: reserve room for a WebSocket frame header, so `finish()` returns a
    ///   complete server-to-client text frame without copying the JSON.
    public init(frame: Bool, capacity: Int = 256) {
        self.framed = frame
        self.buffer = ByteBufferAllocator().buffer(capacity: capacity + (frame ? WebSocketFraming.maxHeaderSize : 0))
        if frame {
            buffer.moveWriterIndex(forwardBy: WebSocketFraming.maxHeaderSize)
            buffer.moveReaderIndex(forwardBy: WebSocketFraming.maxHeaderSize)
        }
    }

    public mutating func finish() -> ByteBuffer {
        if framed { WebSocketFraming.prependTextHeader(&buffer) }
        return buffer
    }

    // MARK: structure

    public mutating func object(_ body: (inout JSONWriter) -> Void) {
        comma()
        buffer.writeInteger(UInt8(ascii: "{"))
        needsComma = false
        body(&self)
        buffer.writeInteger(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func array(_ body: (inout JSONWriter) -> Void) {
        comma()
        buffer.writeInteger(UInt8(ascii: "["))
        needsComma = false
        body(&self)
        buffer.writeInteger(UInt8(ascii: "]"))
        needsComma = true
    }

    public mutating func key(_ key: StaticString) {
        comma()
        buffer.writeInteger(UInt8(ascii: "\""))
        buffer.writeStaticString(key)
        buffer.writeStaticString("\":")
        needsComma = false
    }

    /// A member name that is not a literal (escaped).
    public mutating func key(_ key: String) {
        comma()
        writeEscaped(key)
        buffer.writeInteger(UInt8(ascii: ":"))
        needsComma = false
    }

    // MARK: values

    public mutating func string(_ value: String) {
        comma()
        writeEscaped(value)
        needsComma = true
    }

    /// A string known to need no escaping (topic names, ids we generated, timestamps).
    public mutating func plainString(_ value: String) {
        comma()
        buffer.writeInteger(UInt8(ascii: "\""))
        buffer.writeString(value)
        buffer.writeInteger(UInt8(ascii: "\""))
        needsComma = true
    }

    public mutating func int<I: BinaryInteger>(_ value: I) {
        comma()
        writeDecimal(value)
        needsComma = true
    }

    public mutating func bool(_ value: Bool) {
        comma()
        buffer.writeStaticString(value ? "true" : "false")
        needsComma = true
    }

    public mutating func null() {
        comma()
        buffer.writeStaticString("null")
        needsComma = true
    }

    /// Already valid JSON text, copied as is.
    public mutating func raw(_ json: ByteBuffer) {
        comma()
        var json = json
        buffer.writeBuffer(&json)
        needsComma = true
    }

    public mutating func timestamp(millis: Int64) {
        comma()
        buffer.writeInteger(UInt8(ascii: "\""))
        Timestamp.writeISO8601(millis: millis, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "\""))
        needsComma = true
    }

    // MARK: members

    public mutating func member(_ name: StaticString, _ value: String) { key(name); string(value) }
    public mutating func member<I: BinaryInteger>(_ name: StaticString, _ value: I) { key(name); int(value) }
    public mutating func member(_ name: StaticString, _ value: Bool) { key(name); bool(value) }

    // MARK: helpers

    @inline(__always)
    private mutating func comma() {
        if needsComma { buffer.writeInteger(UInt8(ascii: ",")) }
    }

    private mutating func writeDecimal<I: BinaryInteger>(_ value: I) {
        if value < 0 {
            buffer.writeInteger(UInt8(ascii: "-"))
            writeDecimal(UInt64(-Int64(value)))
            return
        }
        var v = UInt64(value)
        if v < 10 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(v))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, no allocation
        withUnsafeMutableBytes(of: &digits) { scratch in
            var i = scratch.count
            while v > 0 {
                i -= 1
                scratch[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[i...]))
        }
    }

    private mutating func writeEscaped(_ value: String) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            var runStart = 0
            for i in 0..<utf8.count {
                let byte = utf8[i]
                guard byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 else { continue }
                buffer.writeBytes(UnsafeBufferPointer(rebasing: utf8[runStart..<i]))
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case 0x0A: buffer.writeStaticString("\\n")
                case 0x0D: buffer.writeStaticString("\\r")
                case 0x09: buffer.writeStaticString("\\t")
                default:
                    let hex: StaticString = "0123456789abcdef"
                    buffer.writeStaticString("\\u00")
                    buffer.writeInteger(hex.utf8Start[Int(byte >> 4)])
                    buffer.writeInteger(hex.utf8Start[Int(byte & 0xF)])
                }
                runStart = i + 1
            }
            buffer.writeBytes(UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}
