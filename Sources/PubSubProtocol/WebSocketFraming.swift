import NIOCore

/// Server-to-client WebSocket frame headers (RFC 6455 5.2; server frames are never masked).
/// Frames are built once per publication and the same bytes are written to every subscriber.
public enum WebSocketFraming {
    public static let maxHeaderSize = 10

    /// Writes a FIN header with `opcode` just before the buffer's readable bytes; the buffer
    /// must have `maxHeaderSize` bytes of room before its reader index.
    public static func prependHeader(_ buffer: inout ByteBuffer, opcode: UInt8) {
        let length = buffer.readableBytes
        let first: UInt8 = 0x80 | opcode
        var start = buffer.readerIndex
        switch length {
        case 0...125:
            start -= 2
            buffer.setInteger(first, at: start)
            buffer.setInteger(UInt8(length), at: start + 1)
        case 126...0xFFFF:
            start -= 4
            buffer.setInteger(first, at: start)
            buffer.setInteger(UInt8(126), at: start + 1)
            buffer.setInteger(UInt16(length), at: start + 2)
        default:
            start -= 10
            buffer.setInteger(first, at: start)
            buffer.setInteger(UInt8(127), at: start + 1)
            buffer.setInteger(UInt64(length), at: start + 2)
        }
        buffer.moveReaderIndex(to: start)
    }

    /// Writes a FIN text-frame header for a payload of `length` bytes.
    public static func writeTextHeader(length: Int, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(0x81))
        switch length {
        case 0...125:
            buffer.writeInteger(UInt8(length))
        case 126...0xFFFF:
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        default:
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
    }

    /// Bytes of the header of a frame with a payload of `length` bytes.
    @inline(__always)
    public static func headerSize(length: Int) -> Int {
        length <= 125 ? 2 : (length <= 0xFFFF ? 4 : 10)
    }

    /// Writes a FIN text-frame header into `raw` (at least `maxHeaderSize` bytes); returns its length.
    @inline(__always)
    public static func writeTextHeader(length: Int, to raw: UnsafeMutableRawBufferPointer) -> Int {
        raw[0] = 0x81
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

    /// A close frame with a status code and optional reason.
    public static func closeFrame(code: UInt16, reason: String = "") -> ByteBuffer {
        var payload = ByteBufferAllocator().buffer(capacity: 2 + reason.utf8.count)
        payload.writeInteger(code)
        payload.writeString(reason)
        return frame(opcode: 0x8, payload: payload)
    }
}
