import NIOCore
import Testing

@testable import PubSubCore
@testable import PubSubProtocol

/// What the fuzz targets of `Fuzz/` (`scripts/fuzz.sh`) found, each reduced to the input that
/// showed it, so it stays fixed without a fuzz run.
@Suite("Fuzz regressions")
struct FuzzRegressionTests {
    // MARK: FuzzWebSocketReader

    /// Reads `chunks` one after another; the messages delivered and the error, if any.
    static func read(_ chunks: [[UInt8]], maxMessageBytes: Int) -> (messages: Int, failure: WebSocketReader.Failure?) {
        var reader = WebSocketReader(maxMessageBytes: maxMessageBytes, compressionNegotiated: false)
        var messages = 0
        for chunk in chunks {
            do throws(WebSocketReader.Failure) {
                try reader.read(ByteBuffer(bytes: chunk)) { _ in
                    messages += 1
                    return true
                }
            } catch {
                return (messages, error)
            }
        }
        return (messages, nil)
    }

    /// A header whose length is refused (over the limit, or with its high bit set) is refused
    /// as soon as the length is in, before the mask key: in one read it was, but when the
    /// header straddled two reads the reader waited for the whole header, mask key included,
    /// before looking at it (a client could hold the connection on a refused frame).
    /// Found by FuzzWebSocketReader: `0a ff ff ff ff ff ff ff ff ff` cut after its first byte.
    @Test(arguments: [
        // 16-bit length 4,096 over a limit of 1,000.
        [0x81, 0xFE, 0x10, 0x00],
        // 64-bit length 2^32 over the limit.
        [0x81, 0xFF, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
        // 64-bit length with its high bit set.
        [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    ] as [[UInt8]])
    func aRefusedLengthFailsBeforeTheMaskKeyWhateverTheReads(header: [UInt8]) {
        let whole = Self.read([header], maxMessageBytes: 1000)
        #expect(whole.failure != nil)
        for cut in 1..<header.count {
            let split = Self.read([Array(header[..<cut]), Array(header[cut...])], maxMessageBytes: 1000)
            #expect(split.failure == whole.failure, "cut after \(cut) bytes")
            #expect(split.messages == 0)
        }
    }

    // MARK: FuzzDeflate

    /// `{"type":"ping"}` compressed as one final block (BFINAL set, zlib's Z_FINISH), as RFC 7692
    /// 7.2.3.4 allows a client to send: `zlib.compressobj(6, zlib.DEFLATED, -15)`, then
    /// `compress(text) + flush(zlib.Z_FINISH)`.
    static let finalBlockPing: [UInt8] = [
        0xAB, 0x56, 0x2A, 0xA9, 0x2C, 0x48, 0x55, 0xB2, 0x52, 0x2A, 0xC8, 0xCC, 0x4B, 0x57, 0xAA, 0x05, 0x00,
    ]
    /// `{"type":"ping","request_id":"2"}` the same way, from a new compressor.
    static let finalBlockPing2: [UInt8] = [
        0xAB, 0x56, 0x2A, 0xA9, 0x2C, 0x48, 0x55, 0xB2, 0x52, 0x2A, 0xC8, 0xCC, 0x4B, 0x57, 0xD2, 0x51, 0x2A, 0x4A,
        0x2D, 0x2C, 0x4D, 0x2D, 0x2E, 0x89, 0xCF, 0x4C, 0x01, 0x8A, 0x19, 0x29, 0xD5, 0x02, 0x00,
    ]

    /// A message that ends in a final block inflates to its text. zlib stops at the end of the
    /// stream and leaves the appended 00 00 FF FF unread; the inflater took unread input for
    /// output still to come, doubled its buffer up to the limit and refused the message as too
    /// large (a 15-byte ping, limit 4,096). The next message then starts a new stream.
    /// Found by FuzzDeflate on its `inflate-bfinal` seed.
    @Test func aMessageEndingInAFinalBlockInflates() throws {
        let inflater = try MessageInflater()
        let first = try inflater.inflate(ByteBuffer(bytes: Self.finalBlockPing), limit: 4096)
        #expect(String(buffer: first) == #"{"type":"ping"}"#)
        let second = try inflater.inflate(ByteBuffer(bytes: Self.finalBlockPing2), limit: 4096)
        #expect(String(buffer: second) == #"{"type":"ping","request_id":"2"}"#)
    }

    /// The limit is the largest message accepted, as documented ("MESSAGE_TOO_LARGE past
    /// `limit` bytes"): a message of exactly `limit` bytes inflates, one byte more is refused.
    /// The inflater checked its buffer's capacity, not what it held, and accepted more than the
    /// limit whenever the buffer had room for it: up to the next doubling (1,001 bytes with a
    /// limit of 1,000), or 4 times the compressed size, the room it starts with (8,191 bytes
    /// that do not compress, limit 4,096).
    @Test(arguments: [256, 1000, 4096])
    func theLimitIsTheLargestMessageInflated(limit: Int) throws {
        var seed: UInt64 = 1
        func noise(_ count: Int) -> ByteBuffer {
            ByteBuffer(bytes: (0..<count).map { _ in
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: seed >> 33)
            })
        }
        for size in [limit - 1, limit, limit + 1, limit * 2 - 1] {
            for text in [ByteBuffer(repeating: UInt8(ascii: "a"), count: size), noise(size)] {
                let compressed = PerMessageDeflate.compress(text)
                let inflater = try MessageInflater()
                if size <= limit {
                    #expect(try inflater.inflate(compressed, limit: limit) == text, "\(size) bytes, limit \(limit)")
                } else {
                    let error = #expect(throws: PubSubError.self, "\(size) bytes, limit \(limit)") {
                        try inflater.inflate(compressed, limit: limit)
                    }
                    #expect(error?.code == .messageTooLarge)
                }
            }
        }
    }
}
