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
}
