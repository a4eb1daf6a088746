import NIOCore

/// The inbound half of a WebSocket connection: turns socket reads into whole messages.
///
/// Frames are parsed in place out of each read (``WebSocketFrameParser``): an unfragmented
/// message is handed on as a slice of the read buffer, unmasked in place, so the common
/// case costs no allocation or copy per message. Fragmented messages (RSV1-compressed ones
/// too) are assembled here; control frames may arrive between their fragments.
public struct WebSocketReader {
    public enum Message {
        /// A text message; `compressed` when its first frame had RSV1 (permessage-deflate).
        case text(ByteBuffer, compressed: Bool)
        /// A binary message, the same way (Phoenix 1.0.0 clients may send their JSON in one).
        case binary(ByteBuffer, compressed: Bool)
        case ping(ByteBuffer)
        case pong
        case close(ByteBuffer)
    }

    /// Ends the connection: `tooLarge` with 1009, `protocolError` with 1002.
    public typealias Failure = WebSocketFrameParser.ParseError

    /// Largest message, and largest frame, in payload bytes.
    public let maxMessageBytes: Int
    /// Whether permessage-deflate was negotiated (RSV1 allowed on a message's first frame).
    public let compressionNegotiated: Bool
    public static let maxFragments = 1024

    /// An incomplete frame left over from the previous read.
    private var pending: ByteBuffer?
    /// The fragments of a message not finished yet.
    private var fragments: ByteBuffer?
    private var fragmentsAreText = false
    private var fragmentsCompressed = false
    private var fragmentCount = 0
    /// Frame headers of the buffer being processed (emptied, capacity kept, at each start).
    private var frames: [WebSocketFrameParser.Header] = []
    /// After a failure nothing more is read: the stream is out of step.
    public private(set) var failed = false

    public init(maxMessageBytes: Int, compressionNegotiated: Bool) {
        self.maxMessageBytes = maxMessageBytes
        self.compressionNegotiated = compressionNegotiated
    }

    /// Parses `input` and calls `deliver` for every complete message, in order, until it
    /// returns false. Throws after delivering the messages that came before a bad frame.
    /// Each message is handed over (consumed), not lent: the session moves its bytes on.
    public mutating func read(_ input: ByteBuffer, deliver: (consuming Message) -> Bool) throws(Failure) {
        guard !failed else { return }
        var input = input
        // A frame left incomplete by the previous read is completed with just the bytes it
        // lacks (copied); the rest of this read is then parsed in place.
        while var straddling = pending {
            pending = nil
            // First the rest of the header, then the rest of the frame.
            let target: Int
            do throws(Failure) {
                target = try Self.frameLength(straddling, maxPayload: maxMessageBytes)
                    ?? straddling.withUnsafeReadableBytes { WebSocketFrameParser.headerLength($0) }
            } catch {
                target = 0  // a bad header: processing it now reports the failure
            }
            let take = min(input.readableBytes, max(0, target - straddling.readableBytes))
            straddling.writeImmutableBuffer(input.readSlice(length: take)!)
            if straddling.readableBytes < target {
                // The read ended first. A header already refused by the bytes here (its length,
                // before the mask key comes) fails now, as it does when it comes in one read.
                do throws(Failure) {
                    _ = try Self.frameLength(straddling, maxPayload: maxMessageBytes)
                } catch {
                    fail()
                    throw error
                }
                pending = straddling
                return
            }
            // A whole frame, or a whole header (then kept as pending, and the loop goes on).
            guard try process(straddling, deliver: deliver) else { return }
        }
        if input.readableBytes > 0 {
            _ = try process(input, deliver: deliver)
        }
    }

    /// The length of the frame starting `buffer`, nil while its header is incomplete; a bad
    /// header throws (and is reported when the buffer is processed).
    private static func frameLength(_ buffer: ByteBuffer, maxPayload: Int) throws(Failure) -> Int? {
        let result = buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(Failure) in try WebSocketFrameParser.header(bytes, maxPayload: maxPayload)?.frameLength }
        }
        return try result.get()
    }

    /// Parses the frames in `buffer`, delivers their messages and keeps an incomplete last
    /// frame in `pending`; returns false if `deliver` asked to stop.
    private mutating func process(_ buffer: ByteBuffer, deliver: (consuming Message) -> Bool) throws(Failure) -> Bool {
        var buffer = buffer
        // Pass 1: find the complete frames (and a bad one), without touching the bytes.
        frames.removeAll(keepingCapacity: true)
        var failure: Failure?
        var needsUnmask = false
        let maxPayload = maxMessageBytes
        buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let header: WebSocketFrameParser.Header
                do throws(Failure) {
                    guard let parsed = try WebSocketFrameParser.header(
                        UnsafeRawBufferPointer(rebasing: bytes[offset...]), maxPayload: maxPayload
                    ) else { return }
                    header = parsed
                } catch {
                    failure = error
                    return
                }
                guard let key = header.maskKey else {
                    failure = .protocolError("client frames must be masked")
                    return
                }
                guard bytes.count - offset >= header.frameLength else { return }
                if key != 0 { needsUnmask = true }
                frames.append(header)
                offset += header.frameLength
            }
        }
        // Unmask every frame of this read in one mutable access (one copy of the read buffer
        // at most, when the socket's buffer is still shared); zero keys need nothing.
        if needsUnmask {
            buffer.withUnsafeMutableReadableBytes { bytes in
                var offset = 0
                for header in frames {
                    let start = offset + header.headerLength
                    WebSocketFrameParser.unmask(
                        UnsafeMutableRawBufferPointer(rebasing: bytes[start..<(start + header.payloadLength)]),
                        key: header.maskKey ?? 0
                    )
                    offset += header.frameLength
                }
            }
        }

        // Pass 2: hand the messages on.
        for header in frames {
            let payload = buffer.getSlice(at: buffer.readerIndex + header.headerLength, length: header.payloadLength)!
            buffer.moveReaderIndex(forwardBy: header.frameLength)
            let message: Message?
            do throws(Failure) {
                message = try assemble(header, consume payload)
            } catch {
                fail()
                throw error
            }
            if let message = consume message, !deliver(message) { return false }
        }
        if let failure {
            fail()
            throw failure
        }
        if buffer.readableBytes > 0 {
            // Keep the incomplete frame in a buffer of its own. Keeping `buffer` would keep the
            // whole read, and each later read appended to it would grow it without bound
            // (its consumed bytes are never discarded) while a client streams frames that
            // straddle reads.
            // Room for the whole frame when its header is here: completing it copies once.
            let frameLength = (try? Self.frameLength(buffer, maxPayload: maxMessageBytes)) ?? nil
            var rest = ByteBufferAllocator().buffer(capacity: max(buffer.readableBytes, frameLength ?? 0))
            rest.writeBuffer(&buffer)
            pending = rest
        }
        return true
    }

    /// Bytes held for an incomplete frame (tests: it must stay about one frame).
    public var pendingCapacity: Int { pending?.capacity ?? 0 }

    private mutating func fail() {
        failed = true
        pending = nil
        fragments = nil
    }

    /// One frame's part in a message: the whole message, a fragment kept for later, or a
    /// control message.
    private mutating func assemble(_ header: WebSocketFrameParser.Header, _ payload: consuming ByteBuffer) throws(Failure) -> Message? {
        if header.isControl {
            guard !header.rsv1 else { throw .protocolError("RSV1 set on a control frame") }
            switch header.opcode {
            case WebSocketFrameParser.ping: return .ping(payload)
            case WebSocketFrameParser.pong: return .pong
            default: return .close(payload)
            }
        }
        if header.opcode == WebSocketFrameParser.continuation {
            guard var assembled = fragments else { throw .protocolError("continuation frame without a message to continue") }
            guard !header.rsv1 else { throw .protocolError("RSV1 set on a continuation frame") }
            fragments = nil  // keep the buffer uniquely referenced while appending
            guard assembled.readableBytes + payload.readableBytes <= maxMessageBytes else {
                throw .tooLarge(assembled.readableBytes + payload.readableBytes)
            }
            fragmentCount += 1
            guard fragmentCount <= Self.maxFragments else {
                throw .protocolError("message split into more than \(Self.maxFragments) frames")
            }
            var payload = payload
            assembled.writeBuffer(&payload)
            guard header.fin else {
                fragments = assembled
                return nil
            }
            return fragmentsAreText ? .text(assembled, compressed: fragmentsCompressed) : .binary(assembled, compressed: fragmentsCompressed)
        }
        // A text or binary frame starts a message.
        guard fragments == nil else { throw .protocolError("new message before the fragmented one ended") }
        if header.rsv1 && !compressionNegotiated {
            throw .protocolError("compressed frame without permessage-deflate")
        }
        let isText = header.opcode == WebSocketFrameParser.text
        if header.fin {
            return isText ? .text(payload, compressed: header.rsv1) : .binary(payload, compressed: header.rsv1)
        }
        var assembled = ByteBufferAllocator().buffer(capacity: max(payload.readableBytes * 2, 256))
        var payload = payload
        assembled.writeBuffer(&payload)
        fragments = assembled
        fragmentsAreText = isText
        fragmentsCompressed = header.rsv1
        fragmentCount = 1
        return nil
    }
}
