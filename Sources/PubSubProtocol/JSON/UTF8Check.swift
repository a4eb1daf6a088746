import NIOCore

/// UTF-8 validation of client text (RFC 6455 8.1 for text frames; REST bodies too, since their
/// strings are passed on to WebSocket clients byte for byte).
public enum UTF8Check {
    /// ASCII, the common case, is checked 8 bytes at a time; anything else by the standard library.
    public static func isValid(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            let count = bytes.count
            while index + 8 <= count {
                if bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
                index += 8
            }
            while index < count, bytes[index] < 0x80 { index += 1 }
            return index == count || String(validating: bytes, as: UTF8.self) != nil
        }
    }
}
