// WebSocketReader (and WebSocketFrameParser under it) on a client byte stream cut into reads at
// fuzzer-chosen points.
//
// Input: byte 0 picks the limit (bits 0-2) and whether permessage-deflate was negotiated
// (bit 3); byte 1 picks the cuts: bit 7 set, reads of (bits 0-3) + 1 bytes each; clear, n =
// bits 0-4 cut points follow as 2-byte offsets; then one byte stops delivery after that many
// messages (values < 32; else never); the rest is the stream.
//
// Invariants:
// - the messages delivered and the failure (if any) are the same whatever the cuts: the cut
//   stream against the whole stream in one read, and both against a plain byte-by-byte model
//   of RFC 6455 framing written here (its own header parsing and unmasking);
// - `pendingCapacity` stays within one frame (the largest frame's bytes, rounded up to NIO's
//   power-of-two capacity) after every read;
// - text messages, fragments included, are at most `maxMessageBytes`; control payloads at
//   most 125 bytes; nothing is delivered after `deliver` returns false, or after a failure;
// - `WebSocketFrameParser.headerLength` agrees with every header that parses.
import FuzzSupport
import NIOCore
import PubSubProtocol

let limitChoices = [0, 1, 7, 125, 126, 200, 1000, 65_536]

enum Delivered: Equatable, CustomStringConvertible {
    case text([UInt8], compressed: Bool)
    case binary([UInt8], compressed: Bool)
    case ping([UInt8])
    case pong
    case close([UInt8])

    init(_ message: consuming WebSocketReader.Message) {
        switch consume message {
        case .text(let buffer, let compressed): self = .text(buffer.bytes, compressed: compressed)
        case .binary(let buffer, let compressed): self = .binary(buffer.bytes, compressed: compressed)
        case .ping(let buffer): self = .ping(buffer.bytes)
        case .pong: self = .pong
        case .close(let buffer): self = .close(buffer.bytes)
        }
    }

    var description: String {
        switch self {
        case .text(let bytes, let compressed): "text(\(bytes.count) bytes, compressed: \(compressed))"
        case .binary(let bytes, let compressed): "binary(\(bytes.count) bytes, compressed: \(compressed))"
        case .ping(let bytes): "ping(\(bytes.count) bytes)"
        case .pong: "pong"
        case .close(let bytes): "close(\(bytes.count) bytes)"
        }
    }
}

struct Outcome: Equatable {
    var messages: [Delivered] = []
    var failure: WebSocketReader.Failure?
}

/// Feeds `chunks` to one reader, checking the per-read invariants.
func run(_ chunks: [ArraySlice<UInt8>], limit: Int, compression: Bool, stopAfter: Int?) -> Outcome {
    var reader = WebSocketReader(maxMessageBytes: limit, compressionNegotiated: compression)
    var outcome = Outcome()
    var stopped = false
    let pendingBound = nextPowerOfTwo(max(limit + 14, 16))
    for chunk in chunks {
        do throws(WebSocketReader.Failure) {
            try reader.read(ByteBuffer(bytes: chunk)) { message in
                require(!stopped, "a message delivered after deliver returned false")
                let delivered = Delivered(consume message)
                switch delivered {
                case .text(let bytes, _), .binary(let bytes, _):
                    require(bytes.count <= limit, "data message of \(bytes.count) bytes, limit \(limit)")
                case .ping(let bytes), .close(let bytes): require(bytes.count <= 125, "control payload of \(bytes.count) bytes")
                case .pong: break
                }
                outcome.messages.append(delivered)
                if let stopAfter, outcome.messages.count >= stopAfter { stopped = true }
                return !stopped
            }
        } catch {
            require(reader.failed, "threw \(error) but not failed")
            outcome.failure = error
            return outcome
        }
        require(!reader.failed, "failed without throwing")
        require(reader.pendingCapacity <= pendingBound, "pendingCapacity \(reader.pendingCapacity) over \(pendingBound) (limit \(limit))")
        if stopped { return outcome }
    }
    return outcome
}

/// RFC 6455 framing as the reader applies it, byte by byte over the whole stream: an
/// independent reading of the same rules (header checks in the parser's order, then the
/// reader's message assembly).
func model(_ stream: [UInt8], limit: Int, compression: Bool, stopAfter: Int?) -> Outcome {
    var outcome = Outcome()
    var position = 0
    var fragments: [UInt8]?
    var fragmentsText = false
    var fragmentsCompressed = false
    var fragmentCount = 0
    func fail(_ failure: WebSocketReader.Failure) -> Outcome {
        outcome.failure = failure
        return outcome
    }
    func deliver(_ message: Delivered) -> Bool {
        outcome.messages.append(message)
        return stopAfter.map { outcome.messages.count < $0 } ?? true
    }
    while true {
        let available = stream.count - position
        guard available >= 2 else { return outcome }
        let first = stream[position]
        let second = stream[position + 1]
        let fin = first & 0x80 != 0
        let rsv1 = first & 0x40 != 0
        let opcode = first & 0x0F
        guard first & 0x30 == 0 else { return fail(.protocolError("reserved bits RSV2/RSV3 set")) }
        guard [0, 1, 2, 8, 9, 10].contains(opcode) else { return fail(.protocolError("reserved opcode \(opcode)")) }
        var length = Int(second & 0x7F)
        var headerLength = 2
        if length == 126 {
            guard available >= 4 else { return outcome }
            length = Int(stream[position + 2]) * 256 + Int(stream[position + 3])
            headerLength = 4
        } else if length == 127 {
            guard available >= 10 else { return outcome }
            guard stream[position + 2] < 0x80 else { return fail(.protocolError("frame length has its high bit set")) }
            var value = 0
            var overflow = false
            for byte in stream[(position + 2)..<(position + 10)] {
                let (times, o1) = value.multipliedReportingOverflow(by: 256)
                value = times + Int(byte)
                overflow = overflow || o1
            }
            guard !overflow, value <= limit else { return fail(.tooLarge(overflow ? Int.max : value)) }
            length = value
            headerLength = 10
        }
        let control = opcode >= 8
        if control {
            guard fin else { return fail(.protocolError("fragmented control frame")) }
            guard length <= 125 else { return fail(.protocolError("control frame longer than 125 bytes")) }
        }
        guard length <= limit else { return fail(.tooLarge(length)) }
        guard second & 0x80 != 0 else {
            return fail(.protocolError("client frames must be masked"))
        }
        guard available >= headerLength + 4 else { return outcome }
        let key = Array(stream[(position + headerLength)..<(position + headerLength + 4)])
        headerLength += 4
        guard available >= headerLength + length else { return outcome }
        let start = position + headerLength
        var payload = Array(stream[start..<(start + length)])
        for index in payload.indices { payload[index] ^= key[index % 4] }
        position += headerLength + length

        if control {
            guard !rsv1 else { return fail(.protocolError("RSV1 set on a control frame")) }
            let message: Delivered = opcode == 9 ? .ping(payload) : opcode == 10 ? .pong : .close(payload)
            guard deliver(message) else { return outcome }
            continue
        }
        if opcode == 0 {
            guard var assembled = fragments else { return fail(.protocolError("continuation frame without a message to continue")) }
            guard !rsv1 else { return fail(.protocolError("RSV1 set on a continuation frame")) }
            guard assembled.count + payload.count <= limit else { return fail(.tooLarge(assembled.count + payload.count)) }
            fragmentCount += 1
            guard fragmentCount <= WebSocketReader.maxFragments else {
                return fail(.protocolError("message split into more than \(WebSocketReader.maxFragments) frames"))
            }
            assembled += payload
            fragments = assembled
            if fin {
                fragments = nil
                let message: Delivered =
                    fragmentsText ? .text(assembled, compressed: fragmentsCompressed) : .binary(assembled, compressed: fragmentsCompressed)
                guard deliver(message) else { return outcome }
            }
            continue
        }
        guard fragments == nil else { return fail(.protocolError("new message before the fragmented one ended")) }
        guard !rsv1 || compression else { return fail(.protocolError("compressed frame without permessage-deflate")) }
        if fin {
            guard deliver(opcode == 1 ? .text(payload, compressed: rsv1) : .binary(payload, compressed: rsv1)) else { return outcome }
        } else {
            fragments = payload
            fragmentsText = opcode == 1
            fragmentsCompressed = rsv1
            fragmentCount = 1
        }
    }
}

/// Failures compared with the model: the kind, and the size for `tooLarge` (the model's texts
/// are its own).
func kind(_ failure: WebSocketReader.Failure?) -> String {
    switch failure {
    case nil: "none"
    case .tooLarge(let size)?: "tooLarge(\(size))"
    case .protocolError?: "protocolError"
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let options = input.byte()
    let limit = limitChoices[Int(options & 7)]
    let compression = options & 8 != 0
    let cutsByte = input.byte()
    var cutBytes: [UInt16] = []
    if cutsByte & 0x80 == 0 {
        for _ in 0..<(cutsByte & 0x1F) { cutBytes.append(input.uint16()) }
    }
    let stopByte = input.byte()
    let stopAfter: Int? = stopByte < 32 ? Int(stopByte) + 1 : nil
    let stream = input.rest

    // The reads: fixed-size ones, or cut where the input says.
    var cuts: [Int]
    if cutsByte & 0x80 != 0 {
        cuts = Array(stride(from: 0, to: stream.count, by: Int(cutsByte & 0x0F) + 1))
    } else {
        cuts = cutBytes.map { Int($0) % (stream.count + 1) }
    }
    cuts = Array(Set(cuts + [0, stream.count])).sorted()
    var chunks: [ArraySlice<UInt8>] = []
    for (from, to) in zip(cuts, cuts.dropFirst()) { chunks.append(stream[from..<to]) }

    let whole = run([stream[...]], limit: limit, compression: compression, stopAfter: stopAfter)
    let cut = run(chunks, limit: limit, compression: compression, stopAfter: stopAfter)
    require(
        whole == cut,
        "one read: \(whole.messages) \(String(describing: whole.failure))\n\(chunks.count) reads: \(cut.messages) \(String(describing: cut.failure))"
    )
    let expected = model(stream, limit: limit, compression: compression, stopAfter: stopAfter)
    require(
        expected.messages == whole.messages && kind(expected.failure) == kind(whole.failure),
        "model: \(expected.messages) \(kind(expected.failure))\nreader: \(whole.messages) \(String(describing: whole.failure))"
    )

    // headerLength against each header that parses, at every offset of the stream's start.
    stream.withUnsafeBytes { raw in
        for offset in 0..<min(raw.count, 16) {
            let bytes = UnsafeRawBufferPointer(rebasing: raw[offset...])
            if let header = try? WebSocketFrameParser.header(bytes, maxPayload: limit) {
                require(
                    WebSocketFrameParser.headerLength(bytes) == header.headerLength,
                    "headerLength \(WebSocketFrameParser.headerLength(bytes)) for a header of \(header.headerLength) bytes"
                )
                require(header.payloadLength >= 0 && header.payloadLength <= limit, "payload length \(header.payloadLength)")
            }
        }
    }
    return 0
}
