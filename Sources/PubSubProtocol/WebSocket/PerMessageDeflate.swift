import CompressNIO
import NIOConcurrencyHelpers
import NIOCore
import PubSubCore

/// permessage-deflate (RFC 7692) as pubsub uses it: the server compresses each publication once
/// per wire format with no context takeover (so the compressed bytes are the same for every
/// subscriber) and inflates client messages with a per-connection stream.
///
///     if let response = PerMessageDeflate.negotiate(offers: header) { /* add Sec-WebSocket-Extensions: response */ }
public enum PerMessageDeflate {
    /// Picks the first acceptable `permessage-deflate` offer among a client's extension offers
    /// (``WebSocketHandshake/check(keys:versions:extensions:)`` parsed them) and returns the
    /// response value, or nil to run uncompressed. As RFC 7692 7.1 has it, an offer with an
    /// unknown or repeated parameter or a value out of range is declined, not an error. Offers
    /// that limit the server's window below 15 bits are declined too: frames are compressed
    /// once for every subscriber, with a 15-bit window.
    public static func negotiate(offers: [WebSocketExtension]) -> String? {
        for offer in offers where offer.name == "permessage-deflate" {
            guard let clientNoContextTakeover = acceptable(offer.parameters) else { continue }
            return "permessage-deflate; server_no_context_takeover" + (clientNoContextTakeover ? "; client_no_context_takeover" : "")
        }
        return nil
    }

    /// Whether the client offered `client_no_context_takeover`, or nil to decline the offer.
    private static func acceptable(_ parameters: [WebSocketExtension.Parameter]) -> Bool? {
        var seen: Set<String> = []
        var clientNoContextTakeover = false
        for parameter in parameters {
            guard seen.insert(parameter.name).inserted else { return nil }
            switch (parameter.name, parameter.value) {
            case ("server_no_context_takeover", nil): break
            case ("client_no_context_takeover", nil): clientNoContextTakeover = true
            // We inflate with a 15-bit window, which reads any smaller one.
            case ("client_max_window_bits", nil): break
            case ("client_max_window_bits", let bits?): guard isWindowBits(bits) else { return nil }
            case ("server_max_window_bits", "15"): break
            default: return nil
            }
        }
        return clientNoContextTakeover
    }

    /// 8 to 15, in decimal without leading zeros (RFC 7692 7.1.2).
    private static func isWindowBits(_ value: String) -> Bool {
        guard let bits = Int(value), (8...15).contains(bits) else { return false }
        return String(bits) == value
    }

    /// Compressors are expensive to create (zlib state of ~256 KiB), so they are pooled; each is
    /// used by one thread at a time (taken out of the pool under its lock).
    private static let pool = CompressorPool()

    private final class CompressorPool: @unchecked Sendable {
        private let lock = NIOLock()
        private var idle: [ZlibCompressor] = []
        func take() -> ZlibCompressor { lock.withLock { idle.popLast() } ?? (try! ZlibCompressor(algorithm: .deflate)) }
        func give(_ compressor: ZlibCompressor) { lock.withLock { idle.append(compressor) } }
    }

    /// Compresses a message body as one permessage-deflate message (raw deflate, sync flush,
    /// the trailing 00 00 FF FF removed).
    public static func compress(_ body: ByteBuffer) -> ByteBuffer {
        let compressor = pool.take()
        defer {
            try? compressor.reset()
            pool.give(compressor)
        }
        var input = body
        var output = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: body))
        try! compressor.deflate(from: &input, to: &output, flush: .sync)
        if output.readableBytes >= 4 { output.moveWriterIndex(to: output.writerIndex - 4) }
        return output
    }

    /// A whole server frame (FIN, text, RSV1) around an already compressed body.
    public static func frame(compressed body: ByteBuffer) -> ByteBuffer {
        var frame = ByteBufferAllocator().buffer(capacity: body.readableBytes + WebSocketFraming.maxHeaderSize)
        WebSocketFraming.writeHeader(first: 0xC1, length: body.readableBytes, to: &frame)  // FIN + RSV1 + text
        frame.writeImmutableBuffer(body)
        return frame
    }
}

/// Compresses the payload of `inner`'s frame (a whole text frame): once per publication for
/// all the subscribers that negotiated permessage-deflate. When `plainSlot` is the slot of the
/// same uncompressed format and it has subscribers too, its frame is compressed as it is
/// rather than encoded a second time.
public struct DeflatedEncoder: PublicationEncoder {
    let inner: any PublicationEncoder
    let plainSlot: Int?

    public init(_ inner: any PublicationEncoder, reusing plainSlot: Int? = nil) {
        self.inner = inner
        self.plainSlot = plainSlot
    }

    public func encode(_ publication: borrowing PublicationContent) -> ByteBuffer {
        let plain = plainSlot.flatMap { publication.frames[$0] } ?? inner.encode(publication)
        return PerMessageDeflate.frame(compressed: PerMessageDeflate.compress(WebSocketFraming.payload(of: plain)))
    }
}

/// Inflates one connection's compressed client messages; the stream keeps its window across
/// messages unless the client agreed to `client_no_context_takeover`.
public final class MessageInflater {
    private let decompressor: ZlibDecompressor

    public init() throws {
        decompressor = try ZlibDecompressor(algorithm: .deflate, windowSize: 15)
    }

    /// - Throws: ``PubSubError`` `MESSAGE_TOO_LARGE` past `limit` bytes, `BAD_REQUEST` for bad data.
    public func inflate(_ payload: ByteBuffer, limit: Int) throws(PubSubError) -> ByteBuffer {
        var input = payload
        input.writeBytes([0x00, 0x00, 0xFF, 0xFF])
        var output = ByteBufferAllocator().buffer(capacity: max(256, payload.readableBytes * 4))
        // Until zlib stops with room to spare: all the input is in and all its output out. (All
        // the input in is not enough: with the output full, more may be held back.)
        while true {
            do {
                try decompressor.inflate(from: &input, to: &output)
                break
            } catch let error as CompressNIOError where error == .bufferOverflow {
                // out of room: grow the output (below) and go on
            } catch let error as CompressNIOError where error == .inputBufferOverflow {
                break  // the output filled as the input ended: nothing more came
            } catch {
                throw .badRequest("compressed message could not be inflated")
            }
            // Full, so it holds its capacity (the capacity bounds the growth whatever zlib says).
            guard output.capacity <= limit else { throw Self.tooLarge(limit) }
            output.reserveCapacity(minimumWritableBytes: output.capacity)
        }
        guard output.readableBytes <= limit else { throw Self.tooLarge(limit) }
        if input.readableBytes > 0 {
            // The data ended in a final block (BFINAL, which RFC 7692 7.2.3.4 allows), before the
            // 00 00 FF FF: the stream is over, and the next message starts a new one.
            do { try decompressor.reset() } catch { throw .badRequest("compressed message could not be inflated") }
        }
        return output
    }

    private static func tooLarge(_ limit: Int) -> PubSubError {
        PubSubError(.messageTooLarge, "message inflates to more than \(limit) bytes", context: ["limit": String(limit)])
    }
}
