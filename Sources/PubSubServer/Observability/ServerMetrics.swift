import CoreMetrics
import Foundation
import NIOConcurrencyHelpers
import PubSubCore
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// What `GET /metrics` exposes (SPEC 8), in the Prometheus text format: swift-metrics
/// instruments on a registry of this server's own (not the process-wide `MetricsSystem`, so
/// servers in one process, as in the tests, keep apart). No per-topic labels: per-topic
/// figures are in `/api/stats`.
///
/// The counters the server keeps anyway (publishes, deliveries, drops, connections) are read
/// when scraped, not updated twice on the hot path; only the latency histogram and the HTTP
/// request counter are recorded as things happen.
final class ServerMetrics: Sendable {
    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5),
    ]

    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    /// Sampled deliveries (``LatencyMark``): publish received to frame written to the socket.
    let deliveryLatency: CoreMetrics.Timer
    private let connections, subscriptions, topics: CoreMetrics.Gauge
    private let published, delivered, dropped: CoreMetrics.Counter
    private let residentMemory, openFileDescriptors: CoreMetrics.Gauge
    private let cpuSeconds: CoreMetrics.FloatingPointCounter
    /// What the mirrored counters showed at the last scrape: a scrape adds what is new since.
    private let exported = NIOLockedValueBox((published: 0, delivered: 0, dropped: 0, cpuSeconds: 0.0))

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["pubsub_delivery_latency_seconds"] = Self.latencyBuckets
        self.factory = factory
        deliveryLatency = CoreMetrics.Timer(label: "pubsub_delivery_latency_seconds", factory: factory)
        connections = CoreMetrics.Gauge(label: "pubsub_connections", factory: factory)
        subscriptions = CoreMetrics.Gauge(label: "pubsub_subscriptions", factory: factory)
        topics = CoreMetrics.Gauge(label: "pubsub_topics", factory: factory)
        published = CoreMetrics.Counter(label: "pubsub_messages_published_total", factory: factory)
        delivered = CoreMetrics.Counter(label: "pubsub_messages_delivered_total", factory: factory)
        dropped = CoreMetrics.Counter(label: "pubsub_messages_dropped_total", factory: factory)
        residentMemory = CoreMetrics.Gauge(label: "process_resident_memory_bytes", factory: factory)
        openFileDescriptors = CoreMetrics.Gauge(label: "process_open_fds", factory: factory)
        cpuSeconds = FloatingPointCounter(label: "process_cpu_seconds_total", factory: factory)
    }

    /// One answered HTTP request; `route` is the matched route's pattern (never the raw path,
    /// whose names would make a series per topic).
    func countRequest(method: String, route: String, status: Int) {
        CoreMetrics.Counter(label: "pubsub_http_requests_total", dimensions: [("method", method), ("route", route), ("status", String(status))], factory: factory)
            .increment()
    }

    /// The exposition, with the gauges and mirrored counters brought up to date first.
    func scrape(state: ServerState, topicCount: Int?, published: Int) -> [UInt8] {
        let counters = state.hub.counters
        connections.record(state.connectionsCurrent.load(ordering: .relaxed))
        subscriptions.record(state.hub.subscriberCounts().values.reduce(0, +))
        if let topicCount { topics.record(topicCount) }
        residentMemory.record(ServerState.residentMemoryBytes())
        openFileDescriptors.record(Self.openFileDescriptorCount())
        let now = (
            published: published, delivered: counters.deliveredCount, dropped: counters.droppedCount,
            cpuSeconds: Self.processCPUSeconds()
        )
        exported.withLockedValue { last in
            if now.published > last.published { self.published.increment(by: now.published - last.published) }
            if now.delivered > last.delivered { delivered.increment(by: now.delivered - last.delivered) }
            if now.dropped > last.dropped { dropped.increment(by: now.dropped - last.dropped) }
            if now.cpuSeconds > last.cpuSeconds { cpuSeconds.increment(by: now.cpuSeconds - last.cpuSeconds) }
            last = (max(last.published, now.published), max(last.delivered, now.delivered), max(last.dropped, now.dropped), max(last.cpuSeconds, now.cpuSeconds))
        }
        return registry.emitToBuffer()
    }

    /// User plus system CPU time of this process, from /proc/self/stat (fields 14 and 15, in
    /// clock ticks).
    static func processCPUSeconds() -> Double {
        #if os(Linux)
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return 0 }
        // Fields after the command name (which may hold spaces), from field 3 on.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
        #else
        return 0
        #endif
    }

    static func openFileDescriptorCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }
}
