import NIOCore
import Testing

@testable import PubSubCore
@testable import PubSubProtocol

/// Mutated and random frames must be refused cleanly (an error result), never crash or hang.
@Suite("Decoder robustness")
struct DecoderRobustnessTests {
    static let seeds = [
        #"{"type":"publish","topic":"t","message":{"id":"m","payload":{"a":[1,2.5e-3,"\u00e9\n",true,null]}},"request_id":"r"}"#,
        #"{"type":"subscribe","topic":"orders","since":41,"epoch":"abc"}"#,
        #"["1","2","pubsub","publish",{"topic":"t","message":"x"}]"#,
    ]

    /// A small deterministic generator, so a failure reproduces.
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    @Test func mutatedFramesNeverCrash() {
        var rng = SplitMix(state: 42)
        let interesting: [UInt8] = Array(#"{}[]",:\"0123456789-+.eEtrufalsn "#.utf8) + [0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xFF]
        var decoded = 0
        for _ in 0..<20_000 {
            var bytes = Array(Self.seeds[rng.below(Self.seeds.count)].utf8)
            for _ in 0..<(1 + rng.below(4)) {
                let at = rng.below(bytes.count + 1)
                switch rng.below(3) {
                case 0 where at < bytes.count: bytes.remove(at: at)
                case 1: bytes.insert(interesting[rng.below(interesting.count)], at: at)
                default: if at < bytes.count { bytes[at] = interesting[rng.below(interesting.count)] }
                }
            }
            let buffer = ByteBuffer(bytes: bytes)
            if case .success = NativeCodec.decode(buffer, limits: DecodingLimits()).command { decoded += 1 }
            _ = PhoenixCodec.decode(buffer, version: .v2, limits: DecodingLimits())
            _ = PhoenixCodec.decode(buffer, version: .v1, limits: DecodingLimits())
            _ = try? RESTBodies.publish(buffer, topicFromPath: "t", maxMessageBytes: 65_536)
        }
        #expect(decoded > 0, "some mutations stay valid")
    }

    @Test func randomBytesAreRefused() {
        var rng = SplitMix(state: 7)
        for _ in 0..<5_000 {
            let bytes = (0..<rng.below(64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            guard case .failure(let error) = NativeCodec.decode(ByteBuffer(bytes: bytes), limits: DecodingLimits()).command else {
                continue  // astronomically unlikely to be a valid command
            }
            #expect(error.code == .badRequest)
        }
    }

    /// The publish frame's fast path (`{"type":"publish","topic":…,"message":…` in that order)
    /// decides nothing the general scan would not: for canonical frames, every one of their
    /// single-byte changes, deletions and truncations, and random mutations, both scans throw
    /// the same error or fill the same table and see the same ASCII-ness.
    @Test func usualOrderPublishScansAsTheGeneralScanDoes() {
        let canonical = [
            #"{"type":"publish","topic":"bench","message":{"t0":"0000000000000000123","pad":"xxxxxxxx"},"ack":false}"#,
            #"{"type":"publish","topic":"t","message":{"id":"m","payload":[1,{"é":null}]},"request_id":"p7"}"#,
            #"{"type":"publish","topic":"orders.eu-west-1.created","message":42}"#,
            #"{"type":"publish","topic":"t","message":"x","ack":true,"request_id":"r","ack":false}"#,
            #"{"type":"publish","topic":"t","message":{"id":"a","payload":1,"id":"b"},"message":2}"#,
        ]
        func scan(_ bytes: [UInt8], general: Bool) -> String {
            bytes.withUnsafeBytes { raw in
                var table = JSONFieldTable()
                var scanner = JSONScanner(raw)
                do throws(JSONError) {
                    if general { try scanner.anyTopLevelObject(into: &table) } else { try scanner.topLevelObject(into: &table) }
                } catch {
                    return "error: \(error.description)"
                }
                let fields = JSONKey.allCases.map { key in table[key].map { "\(key)=\($0.kind)@\($0.range)" } ?? "-" }
                return fields.joined(separator: " ") + " ascii=\(scanner.isASCII)"
            }
        }
        var frames: [[UInt8]] = []
        let interesting: [UInt8] = Array(#"{}[]",:\"0 tfx"#.utf8) + [0x09, 0x00, 0xC3]
        for text in canonical {
            let bytes = Array(text.utf8)
            frames.append(bytes)
            for at in bytes.indices {
                frames.append(Array(bytes[..<at]))
                var removed = bytes
                removed.remove(at: at)
                frames.append(removed)
                for byte in interesting where byte != bytes[at] {
                    var changed = bytes
                    changed[at] = byte
                    frames.append(changed)
                }
            }
        }
        var rng = SplitMix(state: 99)
        for _ in 0..<5_000 {
            var bytes = Array(canonical[rng.below(canonical.count)].utf8)
            for _ in 0..<(1 + rng.below(3)) {
                let at = rng.below(bytes.count + 1)
                if rng.below(2) == 0 { bytes.insert(interesting[rng.below(interesting.count)], at: at) } else if at < bytes.count { bytes.remove(at: at) }
            }
            frames.append(bytes)
        }
        var accepted = 0
        for frame in frames {
            let fast = scan(frame, general: false)
            #expect(fast == scan(frame, general: true), "\(String(decoding: frame, as: UTF8.self))")
            if !fast.hasPrefix("error") { accepted += 1 }
        }
        #expect(accepted > canonical.count, "mutations that stay valid are compared too")
    }
}
