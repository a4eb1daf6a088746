import Foundation
import Logging
import NIOCore
import NIOSSL
import PubSubAuth
import PubSubCore
import PubSubRedis
import RedisClient

/// Every setting of a running server, read once at start-up (flags, then environment, then
/// defaults; see `pubsub serve --help`) and passed down.
///
///     var configuration = ServerConfiguration()
///     configuration.port = 0   // any free port
///     try configuration.validate()
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
    /// Kept-alive HTTP connections with no request in progress are closed after this.
    public var httpIdleTimeoutSeconds: Double = 60
    /// An HTTP request head must arrive whole within this (SPEC 2.5 fixes 10 s; no flag).
    public var requestHeadTimeoutSeconds: Double = 10
    /// A connection closed by the server (slow consumer, idle, protocol error) whose close
    /// frame has not reached its socket after this is cut off (no flag: tests of slow clients
    /// on slow builds raise it).
    public var closeTimeoutSeconds: Double = 10
    /// After its close frame reached the socket, the server waits this long for the client's
    /// answer before it closes the TCP connection (no flag: tests of clients that read late
    /// raise it).
    public var closeHandshakeSeconds: Double = 2
    public var logLevel: Logger.Level = .info
    public var logFormat = LogFormat.text

    // The engine (SPEC 6).
    public var engine = Engine.memory
    /// Where the redis engine's Redis is: `redis://[[user]:password@]host[:port][/db]`.
    public var redisURL = "redis://127.0.0.1:6379/0"
    /// Starts every key and channel of the redis engine: nodes with the same URL and prefix
    /// are one cluster.
    public var redisPrefix = "pubsub"
    /// A Redis command unanswered after this fails with UNAVAILABLE (SPEC 6: within a second).
    public var redisTimeoutSeconds: Double = 1

    // Security (SPEC 7).
    public var auth = AuthMode.none
    /// HS256 key of client tokens (at least 32 bytes).
    public var jwtSecret: String?
    /// A PEM public key (RSA for RS256, P-256 for ES256) of client tokens.
    public var jwtPublicKeyPath: String?
    /// Credentials with every right, for servers and operators.
    public var apiKeys: [String] = []
    /// `Origin`s a browser upgrade may come from; empty: any.
    public var allowedOrigins: [String] = []
    /// Serve HTTPS and wss:// with this certificate chain and key (PEM files).
    public var tls: TLSFiles?

    public struct TLSFiles: Sendable {
        public var certificatePath: String
        public var keyPath: String

        public init(certificatePath: String, keyPath: String) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
        }

        /// The server's TLS settings from the files; a file that does not read stops the server.
        func serverConfiguration() throws(InvalidSetting) -> TLSConfiguration {
            do {
                let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
                guard !chain.isEmpty else { throw InvalidSetting(description: "--tls-cert '\(certificatePath)' holds no certificate") }
                let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
                return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            } catch let error as InvalidSetting {
                throw error
            } catch {
                throw InvalidSetting(description: "--tls-cert/--tls-key: cannot use '\(certificatePath)' and '\(keyPath)': \(error)")
            }
        }
    }

    public enum AuthMode: String, Sendable, CaseIterable {
        /// Anyone who reaches the port may do anything.
        case none
        /// Every WebSocket upgrade and REST call but health and ready needs a token or API key.
        case token
    }

    public enum LogFormat: String, Sendable, CaseIterable {
        /// swift-log's lines: `2026-12-05T13:00:00+0000 info pubsub: client_id=c-1 connection opened`.
        case text
        /// One JSON object per line (``JSONLogHandler``).
        case json
    }

    public enum Engine: String, Sendable, CaseIterable {
        /// Topics, history and fan-out in this process.
        case memory
        /// Shared through Redis by every node with the same URL and prefix.
        case redis
    }

    // Limits (SPEC 7); 0 = none.
    /// WebSocket connections at once; an upgrade over it gets 503.
    public var maxConnections = 0
    /// WebSocket connections at once from one client address; an upgrade over it gets 503.
    public var maxConnectionsPerIP = 0
    /// Topics at once; creating one more gets 507 / `LIMIT_EXCEEDED`.
    public var maxTopics = 0
    /// Topics one connection may subscribe to at once (`LIMIT_EXCEEDED`).
    public var maxSubscriptionsPerConnection = 1_000
    /// Publishes per second, per WebSocket connection and per REST client address.
    public var publishRate: Double = 0
    /// Publishes allowed at once above the rate; 0 = the rate (at least 1).
    public var publishBurst = 0

    public init() {}

    /// Frames above this close the connection with 1009 (the message limit answers
    /// MESSAGE_TOO_LARGE below it and keeps the connection).
    public var maxFrameBytes: Int { max(1 << 20, maxMessageBytes * 2 + 16_384) }
    /// REST bodies above this answer 413.
    public var maxBodyBytes: Int { maxMessageBytes + 16_384 }

    /// The token bucket a publisher starts with, or nil when publishing is not rate limited.
    var publishLimit: TokenBucket.Limit? {
        publishRate > 0 ? TokenBucket.Limit(rate: publishRate, burst: publishBurst > 0 ? publishBurst : max(1, Int(publishRate.rounded(.up)))) : nil
    }

    var brokerConfiguration: BrokerConfiguration {
        BrokerConfiguration(historySize: historySize, autoCreateTopics: autoCreateTopics, maxTopics: maxTopics)
    }

    /// The engine these settings ask for: the one place that names it. `group` runs the
    /// connections of an engine that has any.
    func makeEngine(group: any EventLoopGroup, logger: Logger = Logger(label: "pubsub")) -> any Broker {
        switch engine {
        case .memory:
            return MemoryBroker(configuration: brokerConfiguration)
        case .redis:
            // validate() has checked the URL.
            var settings = RedisEngineConfiguration(
                url: (try? RedisURL(redisURL)) ?? RedisURL.local, prefix: redisPrefix, historySize: historySize,
                autoCreateTopics: autoCreateTopics, maxTopics: maxTopics
            )
            settings.commandTimeoutSeconds = redisTimeoutSeconds
            return RedisBroker(configuration: settings, group: group, logger: logger)
        }
    }

    /// The credential checker `--auth token` asks for; nil with `--auth none`.
    func makeAuthenticator() throws(InvalidSetting) -> Authenticator? {
        guard auth == .token else { return nil }
        var pem: String?
        if let path = jwtPublicKeyPath {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw InvalidSetting(description: "--jwt-public-key: cannot read '\(path)'")
            }
            pem = text
        }
        do {
            return try Authenticator(.init(jwtSecret: jwtSecret, jwtPublicKeyPEM: pem, apiKeys: apiKeys))
        } catch {
            throw InvalidSetting(description: error.description)
        }
    }

    /// A setting outside its range: the server does not start.
    public struct InvalidSetting: Error, CustomStringConvertible {
        public let description: String
    }

    /// Checks every setting against the range the server is built for: values outside it
    /// would trap (a heartbeat of 1e12 s overflows the timer), overflow (a message limit near
    /// `Int.max` doubles into the frame limit) or make no sense (a zero queue).
    public func validate() throws(InvalidSetting) {
        func check<T: Comparable>(_ name: String, _ value: T, _ range: ClosedRange<T>) throws(InvalidSetting) {
            guard range.contains(value) else {
                throw InvalidSetting(description: "\(name) must be between \(range.lowerBound) and \(range.upperBound), not \(value)")
            }
        }
        try check("--port", port, 0...65_535)
        try check("--threads", threads, 0...1_024)
        try check("--max-queue", queue.maxMessages, 1...1_000_000)
        try check("--max-queue-bytes", queue.maxBytes, 1_024...(1 << 30))
        try check("--history-size", historySize, 0...1_000_000)
        try check("--max-message-bytes", maxMessageBytes, 1...(64 << 20))
        try check("--heartbeat-seconds", heartbeatSeconds, 0.1...86_400)
        try check("--idle-timeout-seconds", idleTimeoutSeconds, 0.1...86_400)
        try check("--shutdown-grace-seconds", shutdownGraceSeconds, 0...3_600)
        try check("--http-idle-timeout", httpIdleTimeoutSeconds, 0.1...86_400)
        try check("request head timeout", requestHeadTimeoutSeconds, 0.1...3_600)
        try check("close timeout", closeTimeoutSeconds, 0.1...3_600)
        try check("close handshake timeout", closeHandshakeSeconds, 0.1...3_600)
        try check("--max-connections", maxConnections, 0...10_000_000)
        try check("--max-connections-per-ip", maxConnectionsPerIP, 0...10_000_000)
        try check("--max-topics", maxTopics, 0...100_000_000)
        try check("--max-subscriptions-per-connection", maxSubscriptionsPerConnection, 0...1_000_000)
        try check("--publish-rate", publishRate, 0...1_000_000_000)
        try check("--publish-burst", publishBurst, 0...1_000_000_000)
        try check("--redis-timeout-seconds", redisTimeoutSeconds, 0.01...60)
        if auth == .token && jwtSecret == nil && jwtPublicKeyPath == nil && apiKeys.isEmpty {
            throw InvalidSetting(description: "--auth token needs --jwt-secret, --jwt-public-key or --api-key")
        }
        _ = try makeAuthenticator()
        _ = try tls?.serverConfiguration()
        do {
            _ = try RedisURL(redisURL)
        } catch {
            throw InvalidSetting(description: "--redis-url '\(redisURL)' is not valid: \(error)")
        }
        guard !redisPrefix.isEmpty, redisPrefix.utf8.count <= 100, !redisPrefix.contains(where: { $0.isWhitespace }) else {
            throw InvalidSetting(description: "--redis-prefix must be 1 to 100 characters with no spaces")
        }
    }
}
