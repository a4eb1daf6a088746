import Logging
import PubSubCore

/// Every setting of a running server, read once at start-up (flags, then environment, then
/// defaults; see `pubsub serve --help`) and passed down.
///
///     var configuration = ServerConfiguration()
///     configuration.port = 0   // any free port
public struct ServerConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 4000
    /// Event-loop threads; 0 picks one per CPU this process may run on.
    public var threads = 0
    public var queue = QueueLimits()
    public var historySize = 100
    public var maxMessageBytes = 65_536
    public var heartbeatSeconds: Double = 30
    public var idleTimeoutSeconds: Double = 75
    public var autoCreateTopics = false
    /// Accept permessage-deflate when a client offers it (native and Phoenix 1.0.0 sockets).
    public var permessageDeflate = true
    /// How long shutdown waits for outbound queues to flush before closing connections.
    public var shutdownGraceSeconds: Double = 5
    public var logLevel: Logger.Level = .info

    public init() {}

    /// Frames above this close the connection with 1009 (the message limit answers
    /// MESSAGE_TOO_LARGE below it and keeps the connection).
    public var maxFrameBytes: Int { max(1 << 20, maxMessageBytes * 2 + 16_384) }
    /// REST bodies above this answer 413.
    public var maxBodyBytes: Int { maxMessageBytes + 16_384 }

    var brokerConfiguration: BrokerConfiguration {
        BrokerConfiguration(historySize: historySize, autoCreateTopics: autoCreateTopics)
    }
}
