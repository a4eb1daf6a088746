import Benchmark
import NIOCore
import PubSubCore
import PubSubProtocol

/// The memory engine and a hub as the server builds them, with the native encoder only.
func makeBroker(topics: Int, subscribersPerTopic: Int, queue: QueueLimits = QueueLimits()) -> (Node, [Subscriber]) {
    let broker = MemoryBroker(configuration: BrokerConfiguration(historySize: 100))
    let hub = Hub(broker: broker, encoders: [NativeEventEncoder()])
    var subscribers: [Subscriber] = []
    for t in 0..<topics {
        _ = broker.createTopic("topic-\(t)")
        for _ in 0..<subscribersPerTopic {
            let subscriber = Subscriber(clientID: "c", format: 0, limits: queue, counters: hub.counters) {}
            _ = hub.subscribe(subscriber, topic: "topic-\(t)", replay: .none) { _ in ByteBuffer() }
            subscribers.append(subscriber)
        }
    }
    return (Node(broker: broker, hub: hub), subscribers)
}

/// An engine and its hub; publishes as a connection does (a single one is a batch of one).
struct Node {
    let broker: MemoryBroker
    let hub: Hub

    func publish(topic: String, messages: inout [MessageInput], cache: inout PublishCache, receipts: inout [PublishReceipt]) {
        guard case .now(nil) = broker.publish(topic: topic, messages: &messages, cache: &cache, receipts: &receipts) else {
            fatalError("the memory engine publishes at once")
        }
    }
}

let payload = ByteBuffer(string: #"{"t0":"1234567890123456789","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#)
let publishFrame = ByteBuffer(string: #"{"type":"publish","topic":"topic-0","message":{"t0":"1234567890123456789","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},"request_id":"p1"}"#)

let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.wallClock, .cpuTotal, .mallocCountTotal, .throughput]
    // Each sample runs 1,000 iterations, so per-iteration figures are not swamped by the
    // framework's own per-sample work.
    Benchmark.defaultConfiguration = .init(metrics: metrics, scalingFactor: .kilo, maxDuration: .seconds(2), maxIterations: 1_000)

    // Publish + fan-out into N queues, big enough that nothing is dropped or drained meanwhile:
    // one by one (REST), and in batches of 64 as the server publishes a read's native
    // publishes to one topic (one visit per subscriber per batch). An iteration is one message.
    for batchSize in [1, 64] {
        // With 1,000 wildcard patterns held on other subjects: the publish should not notice.
        for (subscribers, iterations, patterns) in [(1, 1_000, 0), (1, 1_000, 1_000), (1_000, 20, 0), (10_000, 3, 0)] {
            let plain = batchSize == 1 ? "publish to \(subscribers) subscriber(s)" : "publish batches of \(batchSize) to \(subscribers) subscriber(s)"
            let name = patterns == 0 ? plain : plain + " with 1,000 patterns on other subjects"
            Benchmark(
                name, configuration: .init(metrics: metrics, scalingFactor: .kilo, maxDuration: .seconds(2), maxIterations: iterations)
            ) { benchmark in
                let (broker, subs) = makeBroker(topics: 1, subscribersPerTopic: subscribers, queue: QueueLimits(maxMessages: 1 << 30, maxBytes: 1 << 40))
                if patterns > 0 { holdPatterns(manyPatterns(), in: broker.hub) }
                var drained = OutboundQueue()
                var cache = PublishCache()
                var batch: [MessageInput] = []
                var receipts: [PublishReceipt] = []
                var published = 0
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    if batchSize == 1 {
                        batch.append(MessageInput(id: nil, payload: payload))
                        broker.publish(topic: "topic-0", messages: &batch, cache: &cache, receipts: &receipts)
                        blackHole(receipts)
                        receipts.removeAll(keepingCapacity: true)
                    } else {
                        batch.append(MessageInput(id: nil, payload: payload))
                        if batch.count == batchSize {
                            broker.publish(topic: "topic-0", messages: &batch, cache: &cache, receipts: &receipts)
                            blackHole(receipts)
                            receipts.removeAll(keepingCapacity: true)
                        }
                    }
                    // Steady state, as with a connection that keeps up: queues are emptied (as a
                    // session's drain does) every 64 messages instead of growing without end.
                    published += 1
                    if published % 64 == 0 {
                        for subscriber in subs {
                            blackHole(subscriber.drain(into: &drained))
                            drained.removeAll()
                        }
                    }
                }
            }
        }
    }

    // Cost must not grow with the number of topics (one subscriber each).
    for topics in [10, 10_000] {
        Benchmark(
            "publish to one of \(topics) topics",
            configuration: .init(metrics: metrics, scalingFactor: .kilo, maxDuration: .seconds(2), maxIterations: 200)
        ) { benchmark in
            let (broker, subs) = makeBroker(topics: topics, subscribersPerTopic: 1, queue: QueueLimits(maxMessages: 1 << 30, maxBytes: 1 << 40))
            let names = (0..<topics).map { "topic-\($0)" }
            var drained = OutboundQueue()
            var next = 0
            var cache = PublishCache()
            var batch: [MessageInput] = []
            var receipts: [PublishReceipt] = []
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let index = next % topics
                batch.append(MessageInput(id: nil, payload: payload))
                broker.publish(topic: names[index], messages: &batch, cache: &cache, receipts: &receipts)
                blackHole(receipts)
                receipts.removeAll(keepingCapacity: true)
                // Each topic's subscriber keeps up: its queue is emptied after each event.
                blackHole(subs[index].drain(into: &drained))
                drained.removeAll()
                next += 1
            }
        }
    }

    Benchmark("queue push and drain (100 events)") { benchmark in
        let (broker, subs) = makeBroker(topics: 1, subscribersPerTopic: 1)
        var frames = PublicationFrames()
        frames[0] = NativeEventEncoder().encode(Publication(topic: "topic-0", seq: 1, id: "x", payload: payload, timestampMillis: 0))
        let publication = Publication(topic: "topic-0", seq: 1, id: "x", payload: payload, timestampMillis: 0, frames: frames)
        _ = broker
        var items = OutboundQueue()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<100 { subs[0].enqueue(.publication(publication)) }
            blackHole(subs[0].drain(into: &items))
            items.removeAll()
        }
    }

    Benchmark("encode native event frame") { benchmark in
        let publication = Publication(topic: "topic-0", seq: 42, id: "0f8fad5b-d9cb-469f-a165-70867728950e", payload: payload, timestampMillis: 1_795_428_000_123)
        let encoder = NativeEventEncoder()
        for _ in benchmark.scaledIterations { blackHole(encoder.encode(publication)) }
    }

    Benchmark("encode publish ack") { benchmark in
        let receipt = PublishReceipt(
            topic: "topic-0", messageID: MessageID("0f8fad5b-d9cb-469f-a165-70867728950e"), seq: 42, delivered: 1, dropped: 0,
            timestampMillis: 1_795_428_000_123
        )
        var replies = ByteBuffer()
        for _ in benchmark.scaledIterations {
            // As a session does: a read's acks appended to one buffer, queued once.
            NativeCodec.append(.published(receipt), requestID: "p123", to: &replies)
            if replies.readableBytes > 60_000 { replies.clear() }
        }
        blackHole(replies)
    }

    Benchmark("decode publish frame") { benchmark in
        let limits = DecodingLimits()
        for _ in benchmark.scaledIterations { blackHole(NativeCodec.decode(publishFrame, limits: limits)) }
    }

    subjectTreeBenchmarks()
}
