import PubSubAuth
import PubSubCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the whole server shares: the engine and this node's hub, the configuration,
/// connection counters and limits.
final class ServerState: Sendable {
    let broker: any Broker
    let hub: Hub
    /// Checks credentials; nil when `--auth none`.
    let authenticator: Authenticator?
    let configuration: ServerConfiguration
    let connectionLimits: ConnectionLimits
    /// REST publishes per client address; nil without `--publish-rate`.
    let restPublishLimiter: PublishRateLimiter?
    let startedAtMillis = WallClock.nowMillis()
    let connectionsCurrent = Atomic<Int>(0)
    let connectionsOpened = Atomic<Int>(0)
    /// WebSocket sessions not yet freed: after their connections close this falls back to
    /// `connectionsCurrent` (tests check that a closed connection leaves nothing behind).
    let sessionsInMemory = Atomic<Int>(0)
    /// Connections closed as slow consumers (their queue overflowed).
    let slowConsumerCloses = Atomic<Int>(0)
    /// A graceful shutdown has begun: `/api/ready` answers 503.
    let shuttingDown = Atomic<Bool>(false)
    /// What `GET /metrics` exposes.
    let metrics = ServerMetrics()
    private let clientIDs = Atomic<UInt64>(0)
    private let idPrefix: String

    init(configuration: ServerConfiguration, broker: any Broker, authenticator: Authenticator? = nil) {
        self.configuration = configuration
        self.broker = broker
        self.authenticator = authenticator
        self.hub = Hub(broker: broker, encoders: WireFormat.encoders)
        self.connectionLimits = ConnectionLimits(
            maxTotal: configuration.maxConnections, maxPerAddress: configuration.maxConnectionsPerIP
        )
        self.restPublishLimiter = configuration.publishLimit.map(PublishRateLimiter.init(limit:))
        self.idPrefix = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
    }

    /// `c-<instance>-<n>`: unique within this process and distinct across restarts.
    func nextClientID() -> String {
        "c-\(idPrefix)-\(clientIDs.wrappingAdd(1, ordering: .relaxed).newValue)"
    }

    var uptimeSeconds: Double { Double(WallClock.nowMillis() - startedAtMillis) / 1000 }

    /// Resident set size of this process, from /proc/self/statm.
    static func residentMemoryBytes() -> Int {
        #if os(Linux)
        let fd = open("/proc/self/statm", O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 128)
        let count = read(fd, &bytes, bytes.count)
        guard count > 0 else { return 0 }
        let fields = bytes[0..<count].split(separator: UInt8(ascii: " "))
        guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
        return 0
        #endif
    }
}
