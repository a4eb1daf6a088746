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
}
