import Logging
import NIOSSL

/// How a ``PubSubClient`` connects and retries. The defaults suit most applications.
///
/// ```swift
/// var configuration = PubSubClientConfiguration()
/// configuration.tls = .makeClientConfiguration()          // for wss:// with a private CA:
/// configuration.tls?.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile("ca.pem"))
/// configuration.maxReconnectDelay = .seconds(5)
/// let client = try PubSubClient(url: "wss://pubsub.example.com", token: token, configuration: configuration)
/// ```
public struct PubSubClientConfiguration: Sendable {
    /// TLS for `wss://` (and `https://`) URLs; nil takes the system's trust store.
    public var tls: TLSConfiguration?
    /// The first reconnect's delay ceiling; each attempt doubles it, up to ``maxReconnectDelay``,
    /// and waits between half and all of it.
    public var initialReconnectDelay: Duration = .milliseconds(500)
    public var maxReconnectDelay: Duration = .seconds(15)
    /// How long a request (subscribe, publish) waits for its reply, or for a connection.
    public var requestTimeout: Duration = .seconds(10)
    /// The largest frame accepted from the server.
    public var maxFrameSize = 16 << 20
    /// Sends a WebSocket ping this often and drops a connection that does not answer, so a
    /// dead network is noticed and the client reconnects.
    public var pingInterval: Duration? = .seconds(30)
    /// How many events one subscription holds that its consumer has not taken yet, and how many
    /// payload bytes: an event that finds either reached is dropped, and once the consumer has
    /// taken half of what waits, a ``PubSubGap`` naming the dropped seqs comes before the next
    /// event. So a consumer that falls behind for good costs bounded memory, and learns what it
    /// lost. nil: no bound (every event waits, however long the consumer takes).
    public var maxPendingEvents: Int? = 100_000
    public var maxPendingBytes: Int? = 64 << 20
    /// Where the WebSocket layer logs; nothing by default.
    public var logger = Logger(label: "PubSubClient", factory: { _ in SwiftLogNoOpLogHandler() })

    public init() {}
}
