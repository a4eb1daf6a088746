/// Client-to-server WebSocket frame headers (RFC 6455 5.2) and unmasking, on raw bytes.
///
/// The server parses frames straight out of each socket read: no frame object, no copy of
/// the payload, unmasking in place 8 bytes at a time. Sessions assemble fragments and handle
/// control frames themselves.
///
///     if let header = try WebSocketFrameParser.header(bytes, maxPayload: 1 << 20) {
///         // header.headerLength + header.payloadLength bytes form the frame
///     }
public enum WebSocketFrameParser {
    public struct Header: Sendable, Equatable {
        public var fin: Bool
        /// RSV1: permessage-deflate's "compressed" bit (first frame of a message only).
        public var rsv1: Bool
        public var opcode: UInt8
        /// Client frames must be masked; nil when the mask bit is clear.
        public var maskKey: UInt32?
        public var headerLength: Int
        public var payloadLength: Int

        public var frameLength: Int { headerLength + payloadLength }
        public var isControl: Bool { opcode & 0x8 != 0 }
    }

    public enum ParseError: Error, Sendable, Equatable {
        /// The payload is longer than allowed (close with 1009).
        case tooLarge(Int)
        /// A violation of RFC 6455 (close with 1002).
        case protocolError(String)
    }

    public static let continuation: UInt8 = 0x0
    public static let text: UInt8 = 0x1
    public static let binary: UInt8 = 0x2
    public static let close: UInt8 = 0x8
    public static let ping: UInt8 = 0x9
    public static let pong: UInt8 = 0xA

    /// How long the header starting `bytes` is (known from its first two bytes), or 2 when
    /// fewer than two bytes are here.
    public static func headerLength(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard bytes.count >= 2 else { return 2 }
        let length = bytes[1] & 0x7F
        return 2 + (length == 126 ? 2 : length == 127 ? 8 : 0) + (bytes[1] & 0x80 != 0 ? 4 : 0)
    }

    /// The header at the start of `bytes`, or nil if `bytes` does not hold all of it yet.
    /// Rejects what no client may send: reserved bits other than RSV1 (the session checks RSV1
    /// against the negotiated extensions), reserved opcodes, fragmented or long control frames,
    /// lengths with the high bit set, and payloads over `maxPayload`.
    public static func header(_ bytes: UnsafeRawBufferPointer, maxPayload: Int) throws(ParseError) -> Header? {
        guard bytes.count >= 2 else { return nil }
        let first = bytes[0]
        let second = bytes[1]
        let fin = first & 0x80 != 0
        let opcode = first & 0x0F
        if first & 0x30 != 0 { throw .protocolError("reserved bits RSV2/RSV3 set") }
        switch opcode {
        case continuation, text, binary, close, ping, pong: break
        default: throw .protocolError("reserved opcode \(opcode)")
        }
        let masked = second & 0x80 != 0
        var length = Int(second & 0x7F)
        var offset = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            var value: UInt64 = 0
            for index in 2..<10 { value = value << 8 | UInt64(bytes[index]) }
            guard value >> 63 == 0 else { throw .protocolError("frame length has its high bit set") }
            guard value <= UInt64(maxPayload) else { throw .tooLarge(Int(clamping: value)) }
            length = Int(value)
            offset = 10
        }
        if opcode & 0x8 != 0 {
            guard fin else { throw .protocolError("fragmented control frame") }
            guard length <= 125 else { throw .protocolError("control frame longer than 125 bytes") }
        }
        guard length <= maxPayload else { throw .tooLarge(length) }
        var maskKey: UInt32?
        if masked {
            guard bytes.count >= offset + 4 else { return nil }
            maskKey = UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
                | UInt32(bytes[offset + 3])
            offset += 4
        }
        return Header(
            fin: fin, rsv1: first & 0x40 != 0, opcode: opcode, maskKey: maskKey, headerLength: offset, payloadLength: length
        )
    }

    /// XORs `bytes` with the mask `key` (network byte order, as sent), 8 bytes at a time.
    /// A zero key (which RFC 6455 allows) leaves the bytes as they are and costs nothing.
    public static func unmask(_ bytes: UnsafeMutableRawBufferPointer, key: UInt32) {
        guard key != 0, let base = bytes.baseAddress else { return }
        // The key's bytes in wire order, repeated: a little- or big-endian load of the
        // payload lines up with it byte for byte.
        let wireOrder = key.bigEndian
        let word = UInt64(wireOrder) | UInt64(wireOrder) << 32
        var index = 0
        let count = bytes.count
        while index + 8 <= count {
            let value = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            base.storeBytes(of: value ^ word, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        withUnsafeBytes(of: key.bigEndian) { keyRaw in
            while index < count {
                bytes[index] ^= keyRaw[index & 3]
                index += 1
            }
        }
    }
}
