import NIOCore
import Testing

@testable import PubSubProtocol

@Suite("Batched frames: framing and lines")
struct BatchedFramesFramingTests {
    /// A batch frame of `length` payload bytes, built as the server's drain builds one.
    static func batchFrame(length: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: length + WebSocketFraming.maxHeaderSize)
        BatchedFrames.open(&buffer)
        buffer.writeRepeatingByte(UInt8(ascii: "x"), count: length)
        BatchedFrames.close(&buffer)
        return buffer
    }

    /// The header goes right-aligned in the reserved room, with the minimal length encoding
    /// (RFC 6455 5.2) on each side of every boundary, and reads back.
    @Test(arguments: [
        (0, [0x81, 0]), (125, [0x81, 125]), (126, [0x81, 126, 0, 126]), (65_535, [0x81, 126, 0xFF, 0xFF]),
        (65_536, [0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    ] as [(Int, [UInt8])])
    func headerAtBoundaries(length: Int, header: [UInt8]) {
        let frame = Self.batchFrame(length: length)
        #expect(frame.readableBytes == header.count + length)
        #expect(Array(frame.readableBytesView.prefix(header.count)) == header)
        frame.withUnsafeReadableBytes { raw in
            #expect(BatchedFrames.frameHeader(raw) == (header.count, length))
            #expect(BatchedFrames.payload(ofFrame: raw).count == length)
            #expect(BatchedFrames.textFrameCount(raw) == 1)
        }
    }

    @Test func framesBackToBack() {
        var frames = Self.batchFrame(length: 3)
        var big = Self.batchFrame(length: 300)
        frames.writeBuffer(&big)
        var payloads: [Int] = []
        frames.withUnsafeReadableBytes { raw in
            #expect(BatchedFrames.textFrameCount(raw) == 2)
            BatchedFrames.forEachPayload(raw) { payloads.append($0.count) }
        }
        #expect(payloads == [3, 300])
        // A pong among them, a compressed frame or a truncated one: not joinable.
        for other in [WebSocketFraming.frame(opcode: 0xA, payload: ByteBuffer(string: "p")), ByteBuffer(bytes: [0xC1, 1, 0x41])] {
            var mixed = frames
            mixed.writeImmutableBuffer(other)
            #expect(mixed.withUnsafeReadableBytes(BatchedFrames.textFrameCount) == nil)
        }
        let truncated = frames.getSlice(at: frames.readerIndex, length: frames.readableBytes - 1)!
        #expect(truncated.withUnsafeReadableBytes(BatchedFrames.textFrameCount) == nil)
    }

    static func lines(_ text: String) -> [String] {
        var lines: [String] = []
        BatchedFrames.forEachLine(ByteBuffer(string: text)) { line in
            lines.append(String(buffer: line))
            return true
        }
        return lines
    }

    @Test func linesSkipBlankOnes() {
        #expect(Self.lines(#"{"a":1}"#) == [#"{"a":1}"#])
        #expect(Self.lines("{\"a\":1}\n{\"b\":2}") == ["{\"a\":1}", "{\"b\":2}"])
        #expect(Self.lines("\n\n {\"a\":1}\r\n\t\r\n \n{\"b\":2}\n") == [" {\"a\":1}\r", "{\"b\":2}"])
        #expect(Self.lines("") == [])
        #expect(Self.lines(" \r\n\n") == [])
        // An escaped newline inside a string is not a line break.
        #expect(Self.lines(#"{"s":"a\nb"}"#) == [#"{"s":"a\nb"}"#])
    }

    @Test func linesStopWhenAsked() {
        var seen = 0
        let finished = BatchedFrames.forEachLine(ByteBuffer(string: "1\n2\n3")) { _ in
            seen += 1
            return seen < 2
        }
        #expect(!finished && seen == 2)
    }
}
