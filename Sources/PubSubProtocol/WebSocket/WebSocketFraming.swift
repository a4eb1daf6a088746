import NIOCore

/// Server-to-client WebSocket frame headers (RFC 6455 5.2; server frames are never masked).
/// Frames are built once per publication and the same bytes are written to every subscriber.
public enum WebSocketFraming {
    public static let maxHeaderSize = 10

    /// First byte of a FIN text frame; with RSV1 (`0xC1`) for a permessage-deflate message.
    public static let text: UInt8 = 0x81

    /// Bytes of the header of a frame with a payload of `length` bytes.
    @inline(__always)
    public static func headerSize(length: Int) -> Int {
        length <= 125 ? 2 : (length <= 0xFFFF ? 4 : 10)
    }

    /// Writes a header (`first` byte, then the length) into `raw`, which has room for
    /// `headerSize(length:)` bytes; returns that size. Every header the server writes comes
    /// from here.
    @inline(__always)
    @discardableResult
    public static func writeHeader(first: UInt8, length: Int, to raw: UnsafeMutableRawBufferPointer) -> Int {
        raw[0] = first
        switch length {
        case 0...125:
            raw[1] = UInt8(length)
            return 2
        case 126...0xFFFF:
            raw[1] = 126
            raw[2] = UInt8(length >> 8)
            raw[3] = UInt8(length & 0xFF)
            return 4
        default:
            raw[1] = 127
            for index in 0..<8 { raw[2 + index] = UInt8((length >> (56 - 8 * index)) & 0xFF) }
            return 10
        }
    }

    /// Appends a FIN header (text unless `first` says otherwise) for a payload of `length` bytes.
    public static func writeHeader(first: UInt8 = text, length: Int, to buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maxHeaderSize) { writeHeader(first: first, length: length, to: $0) }
    }

    /// Writes a FIN header with `opcode` just before the buffer's readable bytes; the buffer
    /// must have `maxHeaderSize` bytes of room before its reader index.
    public static func prependHeader(_ buffer: inout ByteBuffer, opcode: UInt8) {
        let length = buffer.readableBytes
        let start = buffer.readerIndex - headerSize(length: length)
        var header: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &header) { raw in
            let size = writeHeader(first: 0x80 | opcode, length: length, to: raw)
            buffer.setBytes(UnsafeRawBufferPointer(rebasing: raw[..<size]), at: start)
        }
        buffer.moveReaderIndex(to: start)
    }

    /// The payload of a whole unmasked frame (its header skipped).
    public static func payload(of frame: ByteBuffer) -> ByteBuffer {
        let second = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) ?? 0
        let header: Int
        switch second & 0x7F {
        case 126: header = 4
        case 127: header = 10
        default: header = 2
        }
        return frame.getSlice(at: frame.readerIndex + header, length: frame.readableBytes - header) ?? ByteBuffer()
    }

    /// A whole frame with `opcode` around `payload` (control frames: ping, pong, close).
    public static func frame(opcode: UInt8, payload: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: payload.readableBytes + maxHeaderSize)
        buffer.moveWriterIndex(forwardBy: maxHeaderSize)
        buffer.moveReaderIndex(forwardBy: maxHeaderSize)
        var payload = payload
        buffer.writeBuffer(&payload)
        prependHeader(&buffer, opcode: opcode)
        return buffer
    }

    /// Appends a client's frame (RFC 6455 5.2) to `buffer`: the payload masked with `maskKey`
    /// (0 is a valid key and leaves the bytes as they are), or unmasked when it is nil, which
    /// servers must refuse (for tests). For clients: the bench, tests, fuzzing.
    public static func writeClientFrame(
        opcode: UInt8, payload: some Collection<UInt8>, fin: Bool = true, rsv1: Bool = false, maskKey: UInt32? = 0,
        to buffer: inout ByteBuffer
    ) {
        buffer.writeInteger((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode)
        let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
        switch payload.count {
        case 0...125: buffer.writeInteger(maskBit | UInt8(payload.count))
        case 126...0xFFFF:
            buffer.writeInteger(maskBit | 126)
            buffer.writeInteger(UInt16(payload.count))
        default:
            buffer.writeInteger(maskBit | 127)
            buffer.writeInteger(UInt64(payload.count))
        }
        guard let maskKey else {
            buffer.writeBytes(payload)
            return
        }
        buffer.writeInteger(maskKey)
        guard maskKey != 0 else {
            buffer.writeBytes(payload)
            return
        }
        let key = withUnsafeBytes(of: maskKey.bigEndian) { Array($0) }
        buffer.writeBytes(payload.enumerated().map { $0.element ^ key[$0.offset % 4] })
    }

    /// A close frame with a status code and optional reason.
    public static func closeFrame(code: UInt16, reason: String = "") -> ByteBuffer {
        var payload = ByteBufferAllocator().buffer(capacity: 2 + reason.utf8.count)
        payload.writeInteger(code)
        payload.writeString(reason)
        return frame(opcode: 0x8, payload: payload)
    }
}
