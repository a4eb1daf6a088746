import NIOCore

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
    /// until it returns false; returns whether every call returned true.
    @discardableResult
    public static func forEachLine(_ text: ByteBuffer, _ body: (ByteBuffer) -> Bool) -> Bool {
        let bounds: [Range<Int>] = text.withUnsafeReadableBytes { bytes in
            var lines: [Range<Int>] = []
            var start = 0
            var blank = true
            for index in 0..<bytes.count {
                switch bytes[index] {
                case separator:
                    if !blank { lines.append(start..<index) }
                    start = index + 1
                    blank = true
                case 0x20, 0x09, 0x0D:
                    break
                default:
                    blank = false
                }
            }
            if !blank { lines.append(start..<bytes.count) }
            return lines
        }
        if bounds.count == 1 && bounds[0].count == text.readableBytes { return body(text) }
        for line in bounds {
            guard body(text.getSlice(at: text.readerIndex + line.lowerBound, length: line.count)!) else { return false }
        }
        return true
    }
}
