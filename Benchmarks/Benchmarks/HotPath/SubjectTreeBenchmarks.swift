import Benchmark
import NIOCore
import PubSubCore
import PubSubProtocol

/// 1,000 patterns as many wildcard subscribers hold them: `tenant-<i>.*.orders`, `tenant-<i>.>`
/// and a few broad ones.
func manyPatterns() -> [TopicPattern] {
    (0..<1_000).map { index in
        switch index % 4 {
        case 0: TopicPattern("tenant-\(index).*.orders")!
        case 1: TopicPattern("tenant-\(index).>")!
        case 2: TopicPattern("tenant-\(index).eu.*")!
        default: TopicPattern("*.region-\(index).orders")!
        }
    }
}

/// The subject tree against a linear scan of the same patterns (the publish path with
/// patterns held is among the publish benchmarks).
func subjectTreeBenchmarks() {
    let metrics: [BenchmarkMetric] = [.wallClock, .cpuTotal, .mallocCountTotal, .throughput]
    let patterns = manyPatterns()
    let tree = {
        var tree = SubjectTree<Int>()
        for (index, pattern) in patterns.enumerated() { tree.insert(pattern, index) }
        return tree
    }()
    let matched = "tenant-401.eu.orders"
    let unmatched = "billing.eu.invoices"

    Benchmark("subject tree: match among 1,000 patterns") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(tree.matches(matched)) }
    }
    Benchmark("subject tree: no match among 1,000 patterns") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(tree.hasMatch(unmatched)) }
    }
    Benchmark("linear scan: match among 1,000 patterns", configuration: .init(metrics: metrics, scalingFactor: .kilo, maxIterations: 20)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(patterns.filter { $0.matches(matched) }) }
    }
    Benchmark("subject tree: insert and remove 1,000 patterns", configuration: .init(metrics: metrics, scalingFactor: .one, maxIterations: 200)) { benchmark in
        for _ in benchmark.scaledIterations {
            var fresh = SubjectTree<Int>()
            for (index, pattern) in patterns.enumerated() { fresh.insert(pattern, index) }
            for (index, pattern) in patterns.enumerated() { fresh.remove(pattern, index) }
            blackHole(fresh)
        }
    }
}

/// Subscribes one connection to each of `patterns` (none matches a `topic-<n>`).
func holdPatterns(_ patterns: [TopicPattern], in hub: Hub) {
    let holder = Subscriber(clientID: "p", format: 0, limits: QueueLimits(), counters: hub.counters) {}
    for pattern in patterns {
        _ = hub.subscribe(holder, topic: pattern.description, replay: .none) { _ in ByteBuffer() }
    }
}
