import NIOCore
import PubSubCore

/// Appends JSON text to a `ByteBuffer` by hand: the server's frames have fixed shapes, so
/// this is faster than a generic encoder and keeps member order stable for readers.
///
///     var json = JSONWriter(frame: true)
///     json.object { $0.member("type", "pong") }
///     let bytes = json.finish()   // a whole WebSocket text frame
public struct JSONWriter {
    /// JSON text is built in a ``ByteSink``: in place in the destination buffer
    /// (``append(to:estimatedSize:frame:_:)``), or in its own storage copied out by `finish()`.
    private var buffer: ByteSink
    private let framed: Bool
    private var needsComma = false

    /// - Parameter frame: make `finish()` return a complete server-to-client text frame.
    public init(frame: Bool, capacity: Int = 256) {
        self.framed = frame
        self.buffer = ByteSink(capacity: capacity)
    }

    private init(region: UnsafeMutableRawBufferPointer) {
        self.framed = false
        self.buffer = ByteSink(region: region)
    }

    public mutating func finish() -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: buffer.count + (framed ? WebSocketFraming.maxHeaderSize : 0))
        Self.write(buffer, framed: framed, to: &out)
        return out
    }

    /// Appends what `sink` holds to `out`, after a text-frame header if `framed`.
    private static func write(_ sink: ByteSink, framed: Bool, to out: inout ByteBuffer) {
        if framed { WebSocketFraming.writeHeader(length: sink.count, to: &out) }
        sink.withUnsafeBytes { _ = out.writeBytes($0) }
    }

    /// Builds JSON text straight into `out`'s free space (after any frames already there) and
    /// appends it, as a whole text frame if `frame`: no allocation or copy when it fits in
    /// `estimatedSize` bytes (else it is built aside and copied, still correct).
    public static func append(to out: inout ByteBuffer, estimatedSize: Int, frame: Bool, _ body: (inout JSONWriter) -> Void) {
        out.reserveCapacity(minimumWritableBytes: regionSize(estimatedSize: estimatedSize, frame: frame))
        var overflow: ByteSink?
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { raw in
            switch build(in: raw, estimatedSize: estimatedSize, frame: frame, body) {
            case .written(let count):
                return count
            case .overflowed(let sink):
                overflow = sink
                return 0
            }
        }
        if let overflow { write(overflow, framed: frame, to: &out) }
    }

    /// Builds a whole text frame straight into `region` (at least
    /// `regionSize(estimatedSize:frame: true)` bytes) and returns its length; nil when its JSON
    /// came out longer than `estimatedSize` (then nothing in `region` is meaningful).
    public static func frame(in region: UnsafeMutableRawBufferPointer, estimatedSize: Int, _ body: (inout JSONWriter) -> Void) -> Int? {
        if case .written(let count) = build(in: region, estimatedSize: estimatedSize, frame: true, body) { return count }
        return nil
    }

    /// The bytes a region needs for JSON text of `estimatedSize` bytes, with its frame header.
    public static func regionSize(estimatedSize: Int, frame: Bool) -> Int {
        (frame ? WebSocketFraming.headerSize(length: estimatedSize) : 0) + estimatedSize
    }

    private enum Built {
        case written(Int)
        /// The text did not fit: it is in the sink's own storage.
        case overflowed(ByteSink)
    }

    /// The JSON text `body` writes, built in `raw` after room for its frame header if `frame`.
    private static func build(
        in raw: UnsafeMutableRawBufferPointer, estimatedSize: Int, frame: Bool, _ body: (inout JSONWriter) -> Void
    ) -> Built {
        let header = frame ? WebSocketFraming.headerSize(length: estimatedSize) : 0
        var json = JSONWriter(region: UnsafeMutableRawBufferPointer(rebasing: raw[header..<(header + estimatedSize)]))
        body(&json)
        guard json.buffer.isInRegion else { return .overflowed(json.buffer) }
        let count = json.buffer.count
        guard frame else { return .written(count) }
        // The header goes right before the text: move the text if it came out shorter.
        let length = WebSocketFraming.writeHeader(first: WebSocketFraming.text, length: count, to: raw)
        if length != header, let base = raw.baseAddress {
            (base + length).copyMemory(from: base + header, byteCount: count)
        }
        return .written(length + count)
    }

    // MARK: structure

    public mutating func object(_ body: (inout JSONWriter) -> Void) {
        comma()
        buffer.append(UInt8(ascii: "{"))
        needsComma = false
        body(&self)
        buffer.append(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func array(_ body: (inout JSONWriter) -> Void) {
        comma()
        buffer.append(UInt8(ascii: "["))
        needsComma = false
        body(&self)
        buffer.append(UInt8(ascii: "]"))
        needsComma = true
    }

    public mutating func key(_ key: StaticString) {
        comma()
        buffer.append(UInt8(ascii: "\""))
        appendStatic(key)
        appendStatic("\":")
        needsComma = false
    }

    /// A member name that is not a literal (escaped). Literal names use `key(_: StaticString)`.
    public mutating func key(escaping key: String) {
        comma()
        writeEscaped(key)
        buffer.append(UInt8(ascii: ":"))
        needsComma = false
    }

    // MARK: fixed-shape objects

    /// Starts a value whose JSON text is written as is (``verbatim(_:)``, ending with
    /// ``closeVerbatim(_:)``): for frames of a fixed shape on the hot path, one literal instead
    /// of a call per brace, name and comma. The caller keeps the structure valid.
    @inline(__always)
    public mutating func openVerbatim(_ text: StaticString) {
        comma()
        appendStatic(text)
        needsComma = false
    }

    /// JSON text written as is inside a verbatim value, its commas included: the value written
    /// next gets no comma of its own.
    @inline(__always)
    public mutating func verbatim(_ text: StaticString) {
        appendStatic(text)
        needsComma = false
    }

    /// Ends a verbatim value with `text` (its closing braces).
    @inline(__always)
    public mutating func closeVerbatim(_ text: StaticString) {
        appendStatic(text)
        needsComma = true
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
        buffer.append(UInt8(ascii: "\""))
        buffer.append(contentsOf: value)
        buffer.append(UInt8(ascii: "\""))
        needsComma = true
    }

    public mutating func int<I: BinaryInteger>(_ value: I) {
        comma()
        writeDecimal(value)
        needsComma = true
    }

    public mutating func bool(_ value: Bool) {
        comma()
        appendStatic(value ? "true" : "false")
        needsComma = true
    }

    /// A non-negative number with three decimals (`1.250`): latencies in milliseconds, to the
    /// microsecond. Not finite or negative: `null`.
    public mutating func thousandths(_ value: Double) {
        guard value.isFinite, value >= 0, value < 9e15 else { return null() }
        let scaled = Int64((value * 1000).rounded())
        comma()
        writeDecimal(scaled / 1000)
        buffer.append(UInt8(ascii: "."))
        let fraction = scaled % 1000
        buffer.append(UInt8(ascii: "0") + UInt8(fraction / 100))
        buffer.append(UInt8(ascii: "0") + UInt8(fraction / 10 % 10))
        buffer.append(UInt8(ascii: "0") + UInt8(fraction % 10))
        needsComma = true
    }

    public mutating func null() {
        comma()
        appendStatic("null")
        needsComma = true
    }

    /// Already valid JSON text, copied as is.
    public mutating func raw(_ json: ByteBuffer) {
        comma()
        json.withUnsafeReadableBytes { buffer.append(contentsOf: $0) }
        needsComma = true
    }

    public mutating func timestamp(millis: Int64) {
        comma()
        buffer.append(UInt8(ascii: "\""))
        Timestamp.withISO8601(millis: millis) { buffer.append(contentsOf: $0) }
        buffer.append(UInt8(ascii: "\""))
        needsComma = true
    }

    // MARK: members

    public mutating func member(_ name: StaticString, _ value: String) { key(name); string(value) }
    public mutating func member(_ name: StaticString, _ id: MessageID) { key(name); messageID(id) }

    /// A message id: generated ones are written straight from their bits, unescaped.
    public mutating func messageID(_ id: MessageID) {
        guard id.isGenerated else { return string(id.description) }
        comma()
        buffer.append(count: 38) { quoted in
            quoted.storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
            _ = id.writeGenerated(to: quoted + 1)
            quoted.storeBytes(of: UInt8(ascii: "\""), toByteOffset: 37, as: UInt8.self)
        }
        needsComma = true
    }
    public mutating func member<I: BinaryInteger>(_ name: StaticString, _ value: I) { key(name); int(value) }
    public mutating func member(_ name: StaticString, _ value: Bool) { key(name); bool(value) }

    // MARK: helpers

    @inline(__always)
    private mutating func appendStatic(_ string: StaticString) {
        buffer.append(contentsOf: UnsafeBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount))
    }

    @inline(__always)
    private mutating func comma() {
        if needsComma { buffer.append(UInt8(ascii: ",")) }
    }

    private mutating func writeDecimal<I: BinaryInteger>(_ value: I) {
        if value < 0 {
            buffer.append(UInt8(ascii: "-"))
            writeDecimal(UInt64(value.magnitude))  // magnitude: Int64.min has no positive Int64
            return
        }
        let v = UInt64(value)
        let count = Self.decimalCount(v)
        buffer.append(count: count) { Self.storeDecimal(v, count: count, to: $0) }
    }

    /// How many decimal digits `value` has.
    @inline(__always)
    static func decimalCount(_ value: UInt64) -> Int {
        if value < 10 { return 1 }
        var count = 2
        var rest = value / 100
        while rest > 0 {
            count += rest < 10 ? 1 : 2
            rest /= 100
        }
        return count
    }

    /// Stores the `count` (``decimalCount(_:)``) digits of `value` at `out`, from the last
    /// digit back, two digits per division from a table of "00" to "99".
    @inline(__always)
    static func storeDecimal(_ value: UInt64, count: Int, to out: UnsafeMutableRawPointer) {
        var v = value
        let pairs = Self.digitPairs.utf8Start
        var i = count
        while v >= 10 {
            let pair = Int(v % 100) &* 2
            v /= 100
            i &-= 2
            out.storeBytes(of: pairs[pair], toByteOffset: i, as: UInt8.self)
            out.storeBytes(of: pairs[pair &+ 1], toByteOffset: i &+ 1, as: UInt8.self)
        }
        if i > 0 {
            out.storeBytes(of: UInt8(ascii: "0") + UInt8(v), toByteOffset: i &- 1, as: UInt8.self)
        }
    }

    private static let digitPairs: StaticString = """
        0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
        5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899
        """

    /// Whether `byte` cannot stand as is between a JSON string's quotes: a quote, a backslash or
    /// a control character (the one rule ``writeEscaped(_:)`` and ``NativeEventFrame`` follow).
    @inline(__always)
    static func needsEscaping(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20
    }

    private mutating func writeEscaped(_ value: String) {
        buffer.append(UInt8(ascii: "\""))
        var value = value
        value.withUTF8 { utf8 in
            // Most strings (ids, request ids) need no escaping: check 8 bytes at a time.
            var plain = 0
            if let base = utf8.baseAddress {
                while plain + 8 <= utf8.count,
                    JSONScanner.attentionMask(UInt64(littleEndian: UnsafeRawPointer(base + plain).loadUnaligned(as: UInt64.self))) == 0
                {
                    plain += 8
                }
            }
            var runStart = 0
            for i in plain..<utf8.count {
                let byte = utf8[i]
                guard Self.needsEscaping(byte) else { continue }
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i]))
                switch byte {
                case UInt8(ascii: "\""): appendStatic("\\\"")
                case UInt8(ascii: "\\"): appendStatic("\\\\")
                case 0x0A: appendStatic("\\n")
                case 0x0D: appendStatic("\\r")
                case 0x09: appendStatic("\\t")
                default:
                    let hex: StaticString = "0123456789abcdef"
                    appendStatic("\\u00")
                    buffer.append(hex.utf8Start[Int(byte >> 4)])
                    buffer.append(hex.utf8Start[Int(byte & 0xF)])
                }
                runStart = i + 1
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        buffer.append(UInt8(ascii: "\""))
    }
}
