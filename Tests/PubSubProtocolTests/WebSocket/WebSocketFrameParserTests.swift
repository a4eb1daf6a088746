import NIOCore
import Testing

@testable import PubSubProtocol

@Suite("WebSocket frame parser")
struct WebSocketFrameParserTests {
    /// A client frame as a browser would send it: masked with `key`.
    static func frame(opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, key: UInt32? = 0x1234_5678) -> [UInt8] {
        var bytes: [UInt8] = [(fin ? 0x80 : 0) | rsv | opcode]
        let maskBit: UInt8 = key == nil ? 0 : 0x80
        switch payload.count {
        case 0...125: bytes.append(maskBit | UInt8(payload.count))
        case 126...0xFFFF: bytes += [maskBit | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default:
            bytes.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        guard let key else { return bytes + payload }
        let keyBytes = [UInt8(key >> 24), UInt8((key >> 16) & 0xFF), UInt8((key >> 8) & 0xFF), UInt8(key & 0xFF)]
        return bytes + keyBytes + payload.enumerated().map { $0.element ^ keyBytes[$0.offset % 4] }
    }

    func header(_ bytes: [UInt8], max: Int = 1 << 20) throws(WebSocketFrameParser.ParseError) -> WebSocketFrameParser.Header? {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(WebSocketFrameParser.ParseError) in try WebSocketFrameParser.header(raw, maxPayload: max) }
        }
        return try result.get()
    }

    @Test func parsesEveryLengthForm() throws {
        for length in [0, 1, 125, 126, 127, 1000, 65_535, 65_536, 70_000] {
            let bytes = Self.frame(opcode: 0x1, payload: Array(repeating: 0x61, count: length))
            let parsed = try #require(try header(bytes))
            #expect(parsed.payloadLength == length)
            #expect(parsed.frameLength == bytes.count)
            #expect(parsed.maskKey == 0x1234_5678)
            #expect(parsed.fin && parsed.opcode == 0x1 && !parsed.rsv1)
        }
    }

    @Test func waitsForWholeHeader() throws {
        let bytes = Self.frame(opcode: 0x1, payload: Array(repeating: 0x61, count: 70_000))
        for cut in 0..<14 {
            #expect(try header(Array(bytes[..<cut])) == nil, "cut at \(cut)")
        }
        #expect(try header(Array(bytes[..<14])) != nil)
    }

    @Test func rejectsWhatNoClientMaySend() {
        let cases: [([UInt8], WebSocketFrameParser.ParseError)] = [
            (Self.frame(opcode: 0x1, payload: [1], rsv: 0x20), .protocolError("reserved bits RSV2/RSV3 set")),
            (Self.frame(opcode: 0x3, payload: []), .protocolError("reserved opcode 3")),
            (Self.frame(opcode: 0xB, payload: []), .protocolError("reserved opcode 11")),
            (Self.frame(opcode: 0x9, payload: [1], fin: false), .protocolError("fragmented control frame")),
            (Self.frame(opcode: 0x9, payload: Array(repeating: 0, count: 126)), .protocolError("control frame longer than 125 bytes")),
            (Self.frame(opcode: 0x1, payload: Array(repeating: 0, count: 2000)), .tooLarge(2000)),
            ([0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1], .protocolError("frame length has its high bit set")),
            ([0x81, 0xFF, 0x00, 0, 0, 0, 0, 0, 0x10, 0], .tooLarge(4096)),
        ]
        for (bytes, expected) in cases {
            #expect(throws: expected) { try header(bytes, max: 1000) }
        }
    }

    @Test func unmasksAnyLengthAndZeroKeyIsIdentity() {
        for length in 0..<40 {
            let plain = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let frame = Self.frame(opcode: 0x1, payload: plain, key: 0xA1B2_C3D4)
            var masked = Array(frame[(frame.count - length)...])
            masked.withUnsafeMutableBytes { WebSocketFrameParser.unmask($0, key: 0xA1B2_C3D4) }
            #expect(masked == plain, "length \(length)")
            var same = plain
            same.withUnsafeMutableBytes { WebSocketFrameParser.unmask($0, key: 0) }
            #expect(same == plain)
        }
    }
}
