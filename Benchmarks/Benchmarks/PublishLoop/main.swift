#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import PubSubCore
import PubSubProtocol

// The server's publish path without sockets, for counting instructions under callgrind
// (`scripts/count-instructions.sh`): a time measurement on this machine drifts by 30 %, an
// instruction count does not.
//
//     PublishLoop decode N [TOPIC]   decode N publish frames
//     PublishLoop pipe N [TOPIC]     decode, publish to one subscriber, and drain its queue every 64
//                                   (the 64 frames of a read published as one batch, as the server does)
//     PublishLoop pipe-single N      the same, each frame published on its own (as a batch of one)
//
// TOPIC: the topic's name, `bench` unless given (names over 15 bytes are not small strings).
//
// The frames are S4's of ../shared/bench-peers (`ours-noack`: a 100-byte JSON payload, no
// ack), 64 back to back in one buffer as a socket read brings them, each decoded from its slice.
let arguments = CommandLine.arguments
guard [3, 4].contains(arguments.count), ["decode", "pipe", "pipe-single"].contains(arguments[1]), let count = Int(arguments[2]), count > 0,
    arguments.count == 3 || (try? TopicName.validate(arguments[3])) != nil
else {
    print("usage: PublishLoop decode|pipe|pipe-single COUNT [TOPIC]")
    exit(2)
}
let topicName = arguments.count == 4 ? arguments[3] : "bench"
let mode = arguments[1]
let payload = #"{"t0":"0000000000000000001","pad":""# + String(repeating: "x", count: 70) + #""}"#
let frame = #"{"type":"publish","topic":""# + topicName + #"","message":"# + payload + #","ack":false}"#
let frameLength = frame.utf8.count
var read = ByteBuffer()
for _ in 0..<64 { read.writeString(frame) }

let limits = DecodingLimits()
let broker = MemoryBroker(configuration: BrokerConfiguration(historySize: 100, autoCreateTopics: true))
let hub = Hub(broker: broker, encoders: [NativeEventEncoder()])
let subscriber = Subscriber(
    clientID: "loop", format: 0, limits: QueueLimits(maxMessages: 1_000, maxBytes: 1 << 30, policy: .dropOldest),
    counters: hub.counters
) {}
_ = hub.subscribe(subscriber, topic: topicName, replay: .none) { _ in ByteBuffer() }
var cache = PublishCache()
var drained = OutboundQueue()
var requestID: String?
var bytesOut = 0
var batch: [MessageInput] = []
var receipts: [PublishReceipt] = []

for index in 0..<count {
    let slot = index & 63
    // The server reads the clock once per socket read (`PublishCache.now`).
    if slot == 0 { cache.now = WallClock.nowMillis() }
    let text = read.getSlice(at: slot * frameLength, length: frameLength)!
    // As the server's native wire does: decoded first, and checked for UTF-8 unless all ASCII.
    var isASCII = false
    let result = NativeCodec.decode(text, limits: limits, requestID: &requestID, isASCII: &isASCII)
    guard isASCII || UTF8Check.isValid(text) else { fatalError("the frame is not UTF-8") }
    guard case .success(let command) = consume result else { fatalError("the frame did not decode") }
    guard mode != "decode" else { continue }
    guard case .publish(let topic, let message, _) = consume command else { fatalError("not a publish") }
    batch.append(message)
    // pipe-single: each message a batch of one (REST publishes one at a time).
    if mode == "pipe-single" || slot == 63 || index == count - 1 {
        guard case .now(nil) = broker.publish(topic: topic, messages: &batch, cache: &cache, receipts: &receipts) else {
            fatalError("the memory engine publishes at once")
        }
        receipts.removeAll(keepingCapacity: true)
    }
    if slot == 63 || index == count - 1 {
        _ = subscriber.drain(into: &drained)
        while let item = drained.popFirst() {
            if case .publication(let publication) = item { bytesOut += publication.frames.bytes(0).count }
        }
    }
}
print("\(mode) \(count) messages, \(bytesOut) event bytes")
