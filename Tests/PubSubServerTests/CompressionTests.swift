import CompressNIO
import Foundation
import NIOCore
import Testing

@Suite("permessage-deflate")
struct CompressionTests {
    static let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"

    /// Inflates a permessage-deflate message (RFC 7692: append 00 00 FF FF).
    static func inflate(_ bytes: [UInt8], with inflater: ZlibDecompressor) throws -> [String: Any] {
        var input = ByteBuffer(bytes: bytes + [0x00, 0x00, 0xFF, 0xFF])
        var output = ByteBuffer()
        output.reserveCapacity(64 * 1024)
        try inflater.inflate(from: &input, to: &output)
        return try JSONSerialization.jsonObject(with: Data(output.readableBytesView)) as! [String: Any]
    }

    static func deflate(_ text: String, with compressor: ZlibCompressor) throws -> [UInt8] {
        var input = ByteBuffer(string: text)
        var output = ByteBuffer()
        output.reserveCapacity(compressor.maxSize(from: input))
        try compressor.deflate(from: &input, to: &output, flush: .sync)
        return Array(output.readableBytesView.dropLast(4))
    }

    @Test func negotiatedCompressedEventsAndCompressedPublishes() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "zip"])
            let ws = try await TestWebSocket.connect(port: port, extraHeaders: Self.offer)
            #expect(ws.responseHead.contains("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"))
            _ = try await ws.next()  // connected
            try await subscribe(ws, "zip")
            // The client compresses with context takeover: the server's inflater keeps its window.
            let compressor = try ZlibCompressor(algorithm: .deflate)
            let inflater = try ZlibDecompressor(algorithm: .deflate, windowSize: 15)
            let text = String(repeating: "compress me ", count: 40)
            for n in 1...3 {
                let publish = #"{"type":"publish","topic":"zip","message":{"n":\#(n),"text":"\#(text)"},"ack":false}"#
                try await ws.sendFrame(opcode: 0x1, payload: try Self.deflate(publish, with: compressor), rsv1: true)
                let frame = try await ws.nextFrame()
                #expect(frame.compressed, "events are sent compressed")
                #expect(frame.data.count < text.utf8.count / 2)
                let event = try Self.inflate(frame.data, with: inflater)
                #expect(event["seq"] as? Int == n)
                #expect(((event["message"] as? [String: Any])?["payload"] as? [String: Any])?["text"] as? String == text)
                try inflater.reset()  // server_no_context_takeover: every message stands alone
            }
            // A compressed message split into frames (RSV1 on the first only), randomly masked.
            let publish = #"{"type":"publish","topic":"zip","message":{"n":4,"text":"\#(text)"},"ack":false}"#
            let deflated = try Self.deflate(publish, with: compressor)
            let half = deflated.count / 2
            try await ws.sendFrames([
                TestWebSocket.frameBytes(opcode: 0x1, payload: Array(deflated[..<half]), fin: false, rsv1: true, maskKey: 0xC0FF_EE00),
                TestWebSocket.frameBytes(opcode: 0x0, payload: Array(deflated[half...]), maskKey: 0x0BAD_F00D),
            ])
            let event = try Self.inflate(try await ws.nextFrame().data, with: inflater)
            #expect(event["seq"] as? Int == 4)
            await ws.close()
        }
    }

    @Test func notOfferedOrDisabledMeansUncompressed() async throws {
        try await withServer({ $0.permessageDeflate = false }) { port, _ in
            let ws = try await TestWebSocket.connect(port: port, extraHeaders: Self.offer)
            #expect(!ws.responseHead.contains("permessage-deflate"))
            await ws.close()
        }
        try await withServer { port, _ in
            let plain = try await TestWebSocket.connect(port: port)
            #expect(!plain.responseHead.contains("permessage-deflate"))
            // A compressed frame on a connection that did not negotiate it is a protocol error.
            _ = try await plain.next()
            try await plain.sendFrame(opcode: 0x1, payload: [1, 2, 3], rsv1: true)
            #expect(try await plain.waitForClose() == 1002)
            // A narrower server window than 15 bits is declined, not half-honoured.
            let narrow = try await TestWebSocket.connect(port: port, extraHeaders: "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n")
            #expect(!narrow.responseHead.contains("permessage-deflate"))
            await narrow.close()
        }
    }
}
