// NativeCodec.decode (the native protocol's client frames) on arbitrary bytes.
//
// Invariants:
// - never a crash, whatever the bytes;
// - the publish fast path (`{"type":"publish","topic":…` in the usual order, fixed bytes
//   compared as words) and the general scan fill the same field table, or fail the same way,
//   and see the same ASCII-ness; end to end, the frame and the frame with a space before it
//   (which the fast path never takes) decode to the same command, request_id and error;
// - `isASCII` true implies every byte is below 0x80 (it lets the server skip the UTF-8 check);
// - a decoded command passes the decoders' own rules (topic name, ids, payload size);
// - a decoded command written back as JSON (JSONWriter), in the usual member order and
//   reversed, decodes to the same command and request_id;
// - the scanner accepts a valid-UTF-8 text as a JSON object exactly when Foundation's
//   JSONSerialization does (left out for what the two treat differently on purpose: lone
//   surrogate escapes, NUL bytes, deep nesting, numbers Foundation cannot represent, and the
//   trailing commas Foundation takes).
import Foundation
import FuzzSupport
import NIOCore
import PubSubCore
@testable import PubSubProtocol

let limits = DecodingLimits()

/// The field table a scan fills (kinds and byte ranges), or its error, and the ASCII flag.
func scan(_ bytes: UnsafeRawBufferPointer, general: Bool) -> String {
    var table = JSONFieldTable()
    var scanner = JSONScanner(bytes)
    do throws(JSONError) {
        if general { try scanner.anyTopLevelObject(into: &table) } else { try scanner.topLevelObject(into: &table) }
    } catch {
        return "error: \(error.description)"
    }
    let fields = JSONKey.allCases.map { key in table[key].map { "\(key)=\($0.kind)@\($0.range)" } ?? "-" }
    return fields.joined(separator: " ") + " ascii=\(scanner.isASCII)"
}

struct Decoded: Equatable {
    var command: String
    var requestID: String?
    var isASCII: Bool
}

func decode(_ buffer: ByteBuffer, limits: DecodingLimits) -> (Decoded, Result<ClientCommand, PubSubError>) {
    var requestID: String?
    var isASCII = false
    let result = NativeCodec.decode(buffer, limits: limits, requestID: &requestID, isASCII: &isASCII)
    return (Decoded(command: describe(result), requestID: requestID, isASCII: isASCII), result)
}

/// Error texts name byte offsets: the same error one byte later reads the same once digits go.
func withoutDigits(_ text: String) -> String { String(text.unicodeScalars.filter { !("0"..."9").contains($0) }) }

/// Whether Foundation and the scanner are expected to agree on `bytes` (see the header).
func comparableWithFoundation(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard String(validating: bytes, as: UTF8.self) != nil, !bytes.contains(0) else { return false }
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { return false }
    var depth = 0
    var index = 0
    while index < bytes.count {
        let byte = bytes[index]
        if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") { depth += 1 }
        // A \u escape of a surrogate: the scanner makes a lone one U+FFFD, Foundation refuses it.
        if byte == UInt8(ascii: "\\"), index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "u"),
            bytes[index + 2] | 0x20 == UInt8(ascii: "d")
        {
            return false
        }
        index += 1
    }
    return depth < 100
}

/// Whether a `,` is followed by `}` or `]` (whitespace between aside), in a string or not.
func hasTrailingComma(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var afterComma = false
    for byte in bytes {
        switch byte {
        case UInt8(ascii: ","): afterComma = true
        case 0x20, 0x09, 0x0A, 0x0D: continue
        case UInt8(ascii: "}"), UInt8(ascii: "]"): if afterComma { return true }
        default: afterComma = false
        }
    }
    return false
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let buffer = ByteBuffer(bytes: bytes)

    // The fast path against the general scan, table for table.
    let fastScan = scan(bytes, general: false)
    let generalScan = scan(bytes, general: true)
    require(fastScan == generalScan, "fast path: \(fastScan)\ngeneral scan: \(generalScan)")

    let (decoded, result) = decode(buffer, limits: limits)
    if decoded.isASCII {
        require(bytes.allSatisfy { $0 < 0x80 }, "isASCII set for a text with a byte >= 0x80")
        require(!generalScan.hasPrefix("error"), "isASCII set for a text that does not scan")
    }

    // End to end through the general path: a leading space keeps the fast path out.
    var spaced = ByteBuffer(string: " ")
    spaced.writeBytes(bytes)
    var (general, _) = decode(spaced, limits: limits)
    var original = decoded
    original.command = withoutDigits(original.command)
    general.command = withoutDigits(general.command)
    require(original == general, "frame: \(decoded)\nwith a leading space: \(general)")

    // Foundation's JSON parser as a second opinion on what is a JSON object.
    if comparableWithFoundation(bytes) {
        let ours = !generalScan.hasPrefix("error")
        var theirs = false
        var theirError = ""
        do {
            theirs = try JSONSerialization.jsonObject(with: Data(bytes), options: []) is [String: Any]
        } catch {
            theirError = "\(error)"
        }
        // Foundation refuses numbers it cannot hold (1e400); the scanner only checks syntax.
        let numberRefused = theirError.localizedCaseInsensitiveContains("number")
        // Foundation takes a trailing comma (`[1,]`, `{"a":1,}`); JSON does not.
        if !(ours && numberRefused) && !(theirs && !ours && hasTrailingComma(bytes)) {
            require(ours == theirs, "scanner accepts: \(ours) (\(generalScan)); Foundation: \(theirs) \(theirError)")
        }
    }

    guard case .success(let command) = result else { return 0 }
    checkDecoded(command, requestID: decoded.requestID, limits: limits)

    // Written back (members in the usual order, then reversed) it decodes to the same command.
    // The limit is raised: an id written with other escapes may make the message longer.
    let roomy = DecodingLimits(maxMessageBytes: limits.maxMessageBytes * 2 + 1024)
    for reversed in [false, true] {
        let text = nativeText(command, requestID: decoded.requestID, reversed: reversed)
        let (again, _) = decode(text, limits: roomy)
        require(
            again.command == decoded.command && again.requestID == decoded.requestID,
            "re-encoded (reversed: \(reversed)) \(String(decoding: text.readableBytesView, as: UTF8.self))\nfirst: \(decoded)\nagain: \(again)"
        )
    }
    return 0
}
