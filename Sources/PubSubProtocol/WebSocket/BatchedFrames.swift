import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Batched frames (`/ws?batch=1`, docs/protocol.md): several JSON messages share one text
/// frame, separated by `\n`, as newline-delimited JSON. A raw newline cannot occur inside a
/// JSON text (strings escape it), so splitting at every 0x0A byte is exact.
public enum BatchedFrames {
    public static let separator: UInt8 = 0x0A

    // MARK: writing (server)

    /// Starts a batch frame in the empty `buffer`: room for the longest header before its
    /// readable bytes, where ``close(_:)`` puts the real one once the payload's length is known.
    public static func open(_ buffer: inout ByteBuffer) {
        precondition(buffer.readableBytes == 0, "a batch frame starts in an empty buffer")
        buffer.moveWriterIndex(forwardBy: WebSocketFraming.maxHeaderSize)
        buffer.moveReaderIndex(forwardBy: WebSocketFraming.maxHeaderSize)
    }

    /// Ends the frame ``open(_:)`` started: its minimal-length text header (RFC 6455 5.2)
    /// goes right before the payload and the reader index moves back to it, so the readable
    /// bytes are the whole frame.
    public static func close(_ buffer: inout ByteBuffer) {
        WebSocketFraming.prependHeader(&buffer, opcode: WebSocketFrameParser.text)
    }

    // MARK: reading whole server frames

    /// The header size and payload length of the whole unmasked frame at the start of `bytes`.
    @inline(__always)
    public static func frameHeader(_ bytes: UnsafeRawBufferPointer) -> (header: Int, length: Int) {
        switch bytes[1] & 0x7F {
        case 126:
            return (4, Int(bytes[2]) << 8 | Int(bytes[3]))
        case 127:
            var length = 0
            for index in 2..<10 { length = length << 8 | Int(bytes[index]) }
            return (10, length)
        case let short:
            return (2, Int(short))
        }
    }

    /// The payload of `frame`, one whole unmasked frame.
    @inline(__always)
    public static func payload(ofFrame frame: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let header = frameHeader(frame).header
        return UnsafeRawBufferPointer(rebasing: frame[header...])
    }

    /// How many frames `frames` (whole unmasked frames, back to back) holds, if each is an
    /// uncompressed FIN text frame; nil when one is not (a pong, say), as such frames cannot
    /// join a batch.
    public static func textFrameCount(_ frames: UnsafeRawBufferPointer) -> Int? {
        var offset = 0
        var count = 0
        while offset < frames.count {
            guard frames[offset] == WebSocketFraming.text, frames.count - offset >= 2 else { return nil }
            let rest = UnsafeRawBufferPointer(rebasing: frames[offset...])
            let lengthBits = rest[1] & 0x7F
            guard rest.count >= (lengthBits == 127 ? 10 : lengthBits == 126 ? 4 : 2) else { return nil }
            let (header, length) = frameHeader(rest)
            offset += header + length
            count += 1
        }
        return offset == frames.count ? count : nil
    }

    /// Calls `body` with the payload of each frame in `frames` (whole frames, back to back).
    @inline(__always)
    public static func forEachPayload(_ frames: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var offset = 0
        while offset < frames.count {
            let (header, length) = frameHeader(UnsafeRawBufferPointer(rebasing: frames[offset...]))
            body(UnsafeRawBufferPointer(rebasing: frames[(offset + header)..<(offset + header + length)]))
            offset += header + length
        }
    }

    // MARK: reading a batch

    /// Calls `body` with each line of `text` that holds more than JSON whitespace, in order,
    /// until it returns false; returns whether every call returned true. The scan is `memchr`'s
    /// and a line's blankness is decided by its first bytes (a command starts with `{`), so a
    /// batch costs about what the decoder's own look at the same bytes does; a frame of one
    /// line is passed on as it is.
    @discardableResult
    public static func forEachLine(_ text: ByteBuffer, _ body: (ByteBuffer) -> Bool) -> Bool {
        text.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress else { return true }
            var start = 0
            while start < bytes.count {
                let end = memchr(base + start, Int32(separator), bytes.count - start).map { base.distance(to: UnsafeRawPointer($0)) } ?? bytes.count
                if !isBlank(bytes, start..<end) {
                    let line = start == 0 && end == bytes.count ? text : text.getSlice(at: text.readerIndex + start, length: end - start)!
                    guard body(line) else { return false }
                }
                start = end + 1
            }
            return true
        }
    }

    @inline(__always)
    private static func isBlank(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        for index in range {
            switch bytes[index] {
            case 0x20, 0x09, 0x0D: continue
            default: return false
            }
        }
        return true
    }
}
