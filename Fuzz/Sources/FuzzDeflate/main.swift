// The permessage-deflate surface: the upgrade request's extension headers
// (WebSocketExtension.parseList, WebSocketHandshake.check, PerMessageDeflate.negotiate) and the
// inflater of client messages (MessageInflater.inflate). Byte 0 picks the mode (bits 0-1):
//
// 0. The rest is one Sec-WebSocket-Extensions line. parseList never crashes; a parsed list
//    written back (`name; p=v, …`) parses to the same offers; negotiate's answer is nil or one
//    of its two strings, and is the one a plain reading of RFC 7692 7.1 gives.
// 1. The rest is the handshake's header lines (split at \n; a line starting `k` is a
//    Sec-WebSocket-Key, `v` a Sec-WebSocket-Version, anything else an extensions line). check
//    succeeds exactly when there is one key that is the canonical base64 of 16 bytes and one
//    version "13" (spaces and tabs around them aside), and then returns every line's offers.
// 2. The rest is compressed client messages for one inflater (byte 1 picks the limit; each
//    message is a length byte and that many bytes). The output is never over the limit;
//    errors are PubSubErrors (MESSAGE_TOO_LARGE or BAD_REQUEST); what comes out is what a
//    second zlib inflater, given all the room it needs, makes of the same bytes (RFC 7692
//    7.2.2: the payload, then 00 00 FF FF, inflated), and it is refused exactly when that is
//    over the limit (MESSAGE_TOO_LARGE) or not deflate data (BAD_REQUEST).
// 3. The rest is a message's text: compressed (PerMessageDeflate.compress) and inflated again
//    it is the same bytes when within the limit, and refused as too large exactly when not.
import CompressNIO
import FuzzSupport
import NIOCore
import PubSubCore
import PubSubProtocol

let answers: Set<String> = [
    "permessage-deflate; server_no_context_takeover",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
]
let limitChoices = [1, 16, 100, 255, 256, 1000, 4096, 65_536]

func serialize(_ offers: [WebSocketExtension]) -> String {
    offers.map { offer in
        ([offer.name] + offer.parameters.map { p in p.value.map { "\(p.name)=\($0)" } ?? p.name }).joined(separator: "; ")
    }.joined(separator: ", ")
}

/// RFC 7692 7.1 as the server takes it: the first permessage-deflate offer whose parameters
/// are all known, each at most once, with values the server can honour.
func expectedAnswer(_ offers: [WebSocketExtension]) -> String? {
    for offer in offers where offer.name == "permessage-deflate" {
        let names = offer.parameters.map(\.name)
        guard Set(names).count == names.count else { continue }
        let ok = offer.parameters.allSatisfy { p in
            switch p.name {
            case "server_no_context_takeover", "client_no_context_takeover": p.value == nil
            case "client_max_window_bits": p.value == nil || (8...15).map(String.init).contains(p.value!)
            case "server_max_window_bits": p.value == "15"
            default: false
            }
        }
        guard ok else { continue }
        return "permessage-deflate; server_no_context_takeover"
            + (names.contains("client_no_context_takeover") ? "; client_no_context_takeover" : "")
    }
    return nil
}

func extensionLine(_ bytes: [UInt8]) {
    let line = String(decoding: bytes, as: UTF8.self)
    let offers: [WebSocketExtension]
    do throws(PubSubError) {
        offers = try WebSocketExtension.parseList(line)
    } catch {
        require(error.code == .badRequest, "parseList threw \(error)")
        return
    }
    for offer in offers {
        require(!offer.name.isEmpty && offer.parameters.allSatisfy { !$0.name.isEmpty && $0.value != "" }, "empty token in \(offers)")
    }
    let written = serialize(offers)
    let again = try? WebSocketExtension.parseList(written)
    require(again == offers, "\(line.debugDescription) parsed to \(offers); written back \(written.debugDescription) parsed to \(String(describing: again))")
    let answer = PerMessageDeflate.negotiate(offers: offers)
    if let answer { require(answers.contains(answer), "negotiate answered \(answer.debugDescription)") }
    require(answer == expectedAnswer(offers), "negotiate answered \(String(describing: answer)), RFC 7692 reading \(String(describing: expectedAnswer(offers))) for \(offers)")
}

/// The bytes between leading and trailing spaces and tabs.
func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    var slice = bytes
    while let first = slice.first, first == 0x20 || first == 0x09 { slice = slice.dropFirst() }
    while let last = slice.last, last == 0x20 || last == 0x09 { slice = slice.dropLast() }
    return slice
}

let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

/// Canonical base64 of `bytes`, padded.
func base64(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var index = 0
    while index < bytes.count {
        let chunk = Array(bytes[index..<min(index + 3, bytes.count)])
        let b = chunk + Array(repeating: 0, count: 3 - chunk.count)
        let n = Int(b[0]) << 16 | Int(b[1]) << 8 | Int(b[2])
        let chars = (0..<4).map { alphabet[(n >> (18 - 6 * $0)) & 63] }
        out += chars.prefix(chunk.count + 1) + Array(repeating: UInt8(ascii: "="), count: 3 - chunk.count)
        index += 3
    }
    return out
}

/// The 16 bytes `text` is the canonical base64 of, or nil.
func sixteenBytes(_ text: ArraySlice<UInt8>) -> [UInt8]? {
    guard text.count == 24 else { return nil }
    var bits: [Int] = []
    for byte in text.prefix(22) {
        guard let value = alphabet.firstIndex(of: byte) else { return nil }
        bits.append(value)
    }
    var bytes: [UInt8] = []
    var accumulator = 0
    var count = 0
    for value in bits {
        accumulator = accumulator << 6 | value
        count += 6
        if count >= 8 {
            bytes.append(UInt8((accumulator >> (count - 8)) & 0xFF))
            count -= 8
            accumulator &= (1 << count) - 1
        }
    }
    guard bytes.count == 16, base64(bytes)[...] == text else { return nil }
    return bytes
}

func handshake(_ bytes: [UInt8]) {
    var keys: [String] = []
    var versions: [String] = []
    var extensions: [String] = []
    var keyBytes: [ArraySlice<UInt8>] = []
    var versionBytes: [ArraySlice<UInt8>] = []
    for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
        let text = String(decoding: line.dropFirst(), as: UTF8.self)
        switch line.first {
        case UInt8(ascii: "k"): keys.append(text); keyBytes.append(trimmed(ArraySlice(text.utf8)))
        case UInt8(ascii: "v"): versions.append(text); versionBytes.append(trimmed(ArraySlice(text.utf8)))
        default: extensions.append(text)
        }
    }
    let result = Result { () throws(PubSubError) in try WebSocketHandshake.check(keys: keys, versions: versions, extensions: extensions) }
    var expected = keyBytes.count == 1 && sixteenBytes(keyBytes[0]) != nil && versionBytes.count == 1 && versionBytes[0].elementsEqual("13".utf8)
    var offers: [WebSocketExtension] = []
    for line in extensions {
        guard let parsed = try? WebSocketExtension.parseList(line) else {
            expected = false
            break
        }
        offers += parsed
    }
    switch result {
    case .success(let got):
        require(expected, "check accepted keys \(keys) versions \(versions) extensions \(extensions)")
        require(got == offers, "check returned \(got), lines parse to \(offers)")
    case .failure(let error):
        require(error.code == .badRequest, "check threw \(error)")
        require(!expected, "check refused keys \(keys) versions \(versions) extensions \(extensions): \(error)")
    }
}

/// A second inflater that is never short of room: what it makes of `payload` + 00 00 FF FF.
final class Reference {
    let decompressor: ZlibDecompressor
    /// Whether the stream has ended (a block with BFINAL), or failed: nothing after is compared.
    var done = false

    init() { decompressor = try! ZlibDecompressor(algorithm: .deflate, windowSize: 15) }

    /// `corrupt`: the data is not deflate data, found after `produced` bytes of output.
    enum Output { case bytes([UInt8]), corrupt(produced: Int), huge }

    func inflate(_ payload: [UInt8], cap: Int) -> Output {
        var input = ByteBuffer(bytes: payload + [0x00, 0x00, 0xFF, 0xFF])
        var output = ByteBufferAllocator().buffer(capacity: cap)
        do {
            try decompressor.inflate(from: &input, to: &output)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            done = true
            return .huge
        } catch let error as CompressNIOError where error == .inputBufferOverflow {
            // No progress possible on no input: nothing more to inflate.
        } catch {
            done = true
            return .corrupt(produced: output.readableBytes)
        }
        if input.readableBytes > 0 { done = true }  // ended (BFINAL) before the bytes did
        return .bytes(output.bytes)
    }
}

/// Room the reference inflater gets: past anything `MessageInflater` may grow to for `limit`
/// (its first buffer has room for 4 times the compressed bytes, and it doubles while at most
/// the limit is out).
func referenceRoom(limit: Int, payloadCount: Int) -> Int {
    4 * max(nextPowerOfTwo(max(256, payloadCount * 4)), 2 * nextPowerOfTwo(limit)) + 1024
}

func inflateMessages(_ input: inout FuzzInput) {
    let limit = limitChoices[Int(input.byte() & 7)]
    let inflater = try! MessageInflater()
    let reference = Reference()
    while !input.bytes.isEmpty {
        let length = Int(input.byte())
        var payload: [UInt8] = []
        for _ in 0..<length where !input.bytes.isEmpty { payload.append(input.byte()) }
        let room = referenceRoom(limit: limit, payloadCount: payload.count)
        let expected = reference.done ? nil : reference.inflate(payload, cap: room)
        do throws(PubSubError) {
            let output = try inflater.inflate(ByteBuffer(bytes: payload), limit: limit)
            require(output.readableBytes <= limit, "inflated to \(output.readableBytes) bytes, limit \(limit)")
            switch expected {
            case .bytes(let bytes)?:
                require(output.bytes == bytes, "inflated \(output.readableBytes) bytes; the reference \(bytes.count) bytes")
            case .corrupt?:
                require(false, "inflated \(output.readableBytes) bytes; the reference found the data corrupt")
            case .huge?:
                require(false, "inflated \(output.readableBytes) bytes; the reference made more than \(room) of them")
            case nil:
                break
            }
        } catch {
            require(error.code == .messageTooLarge || error.code == .badRequest, "inflate threw \(error)")
            switch expected {
            case .bytes(let bytes)?:
                require(
                    error.code == .messageTooLarge && bytes.count > limit,
                    "inflate threw \(error); the reference inflated \(bytes.count) bytes (limit \(limit))"
                )
            case .huge?: require(error.code == .messageTooLarge, "inflate threw \(error); the reference's output is huge")
            case .corrupt(let produced)?:
                // Past the limit before the bad data, either error may come first.
                require(
                    error.code == .badRequest || produced > limit,
                    "inflate threw \(error); the reference found the data corrupt after \(produced) bytes"
                )
            case nil: break
            }
            return  // the stream is out of step after an error: the connection closes
        }
        if reference.done { return }
    }
}

func roundTrip(_ input: inout FuzzInput) {
    let limit = limitChoices[Int(input.byte() & 7)]
    let text = input.rest
    let compressed = PerMessageDeflate.compress(ByteBuffer(bytes: text))
    let inflater = try! MessageInflater()
    do throws(PubSubError) {
        let output = try inflater.inflate(compressed, limit: limit)
        require(output.bytes == text, "\(text.count) bytes compressed and inflated came back as \(output.readableBytes) bytes")
        require(output.readableBytes <= limit, "inflated to \(output.readableBytes) bytes, limit \(limit)")
    } catch {
        require(error.code == .messageTooLarge, "inflating what compress made threw \(error)")
        require(text.count > limit, "a message of \(text.count) bytes refused as too large; limit \(limit)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    switch input.byte() & 3 {
    case 0: extensionLine(input.rest)
    case 1: handshake(input.rest)
    case 2: inflateMessages(&input)
    default: roundTrip(&input)
    }
    return 0
}
