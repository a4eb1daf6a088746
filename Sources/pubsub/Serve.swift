import ArgumentParser
import Foundation
import Logging
import PubSubCore
import PubSubServer

/// `pubsub serve`: every setting is a flag, with an environment variable as fallback.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the server (the default command).",
        discussion: "Each option falls back to the environment variable named in its help, then to its default."
    )

    @Option(help: "Address to listen on. (env HOST, default 127.0.0.1)")
    var host: String?

    @Option(help: "Port to listen on; 0 picks a free one. (env PORT, default 4000)")
    var port: Int?

    @Option(help: "Event-loop threads; 0 = one per CPU. (env PUBSUB_THREADS, default 0)")
    var threads: Int?

    @Option(help: "Outbound queue limit per connection, in messages. (env PUBSUB_MAX_QUEUE, default 1000)")
    var maxQueue: Int?

    @Option(help: "Outbound queue limit per connection, in bytes of encoded frames. (env PUBSUB_MAX_QUEUE_BYTES, default 4194304)")
    var maxQueueBytes: Int?

    @Option(help: "What a full queue does: drop-oldest, drop-newest or disconnect. (env PUBSUB_BACKPRESSURE, default drop-oldest)")
    var backpressure: String?

    @Option(help: "Messages retained per topic for replay; 0 disables history. (env PUBSUB_HISTORY_SIZE, default 100)")
    var historySize: Int?

    @Option(help: "Largest message, in bytes of JSON. (env PUBSUB_MAX_MESSAGE_BYTES, default 65536)")
    var maxMessageBytes: Int?

    @Option(help: "Seconds between WebSocket pings. (env PUBSUB_HEARTBEAT_SECONDS, default 30)")
    var heartbeatSeconds: Double?

    @Option(help: "Close connections silent for longer than this, in seconds. (env PUBSUB_IDLE_TIMEOUT_SECONDS, default 75)")
    var idleTimeoutSeconds: Double?

    @Option(help: "Seconds shutdown waits for queues to flush. (env PUBSUB_SHUTDOWN_GRACE_SECONDS, default 5)")
    var shutdownGraceSeconds: Double?

    @Option(help: "Create topics on first subscribe or publish: true or false. (env PUBSUB_AUTO_CREATE_TOPICS, default false)")
    var autoCreateTopics: Bool?

    @Option(help: "Accept permessage-deflate compression when clients offer it: true or false. (env PUBSUB_PERMESSAGE_DEFLATE, default true)")
    var permessageDeflate: Bool?

    @Option(help: "Close kept-alive HTTP connections idle for longer than this, in seconds. (env PUBSUB_HTTP_IDLE_TIMEOUT_SECONDS, default 60)")
    var httpIdleTimeout: Double?

    @Option(help: "WebSocket connections at once; 0 = no limit. (env PUBSUB_MAX_CONNECTIONS, default 0)")
    var maxConnections: Int?

    @Option(help: "WebSocket connections at once per client address; 0 = no limit. (env PUBSUB_MAX_CONNECTIONS_PER_IP, default 0)")
    var maxConnectionsPerIp: Int?

    @Option(help: "Topics at once; 0 = no limit. (env PUBSUB_MAX_TOPICS, default 0)")
    var maxTopics: Int?

    @Option(help: "Topics one connection may subscribe to; 0 = no limit. (env PUBSUB_MAX_SUBSCRIPTIONS_PER_CONNECTION, default 1000)")
    var maxSubscriptionsPerConnection: Int?

    @Option(help: "Publishes per second per connection and per REST client address; 0 = no limit. (env PUBSUB_PUBLISH_RATE, default 0)")
    var publishRate: Double?

    @Option(help: "Publishes allowed at once above the rate; 0 = the rate. (env PUBSUB_PUBLISH_BURST, default 0)")
    var publishBurst: Int?

    @Option(help: "memory, or redis to share topics with every node on the same Redis and prefix. (env PUBSUB_ENGINE, default memory)")
    var engine: String?

    @Option(help: "The redis engine's Redis: redis://[[user]:password@]host[:port][/db]. (env PUBSUB_REDIS_URL, default redis://127.0.0.1:6379/0)")
    var redisUrl: String?

    @Option(help: "Prefix of the redis engine's keys and channels: one per cluster. (env PUBSUB_REDIS_PREFIX, default pubsub)")
    var redisPrefix: String?

    @Option(help: "A Redis command unanswered after this many seconds fails with UNAVAILABLE. (env PUBSUB_REDIS_TIMEOUT_SECONDS, default 1)")
    var redisTimeoutSeconds: Double?

    @Option(help: "none, or token: WebSocket upgrades and REST calls need a JWT or an API key. (env PUBSUB_AUTH, default none)")
    var auth: String?

    @Option(help: "HS256 secret of client tokens, at least 32 bytes. (env PUBSUB_JWT_SECRET)")
    var jwtSecret: String?

    @Option(help: "PEM public key of client tokens: RSA (RS256) or P-256 (ES256). (env PUBSUB_JWT_PUBLIC_KEY)")
    var jwtPublicKey: String?

    @Option(help: "A key with every right, for servers and operators; repeat it or separate keys with commas. (env PUBSUB_API_KEY)")
    var apiKey: [String] = []

    @Option(help: "Origins a browser's WebSocket upgrade may come from, comma-separated; others get 403. (env PUBSUB_ALLOWED_ORIGINS, default any)")
    var allowedOrigins: String?

    @Option(help: "PEM certificate chain: serve HTTPS and wss:// on the port (with --tls-key). (env PUBSUB_TLS_CERT)")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert. (env PUBSUB_TLS_KEY)")
    var tlsKey: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical. (env LOG_LEVEL, default info)")
    var logLevel: String?

    @Option(help: "text, or json: one JSON object per line, for log pipelines. (env PUBSUB_LOG_FORMAT, default text)")
    var logFormat: String?

    func run() async throws {
        // First, before any thread starts: glibc's allocator cache can only be sized at exec.
        MallocTuning.reexecIfUseful()
        let configuration = try resolve(environment: ProcessInfo.processInfo.environment)
        LoggingSystem.bootstrap { label in
            switch configuration.logFormat {
            case .json:
                return JSONLogHandler(label: label, level: configuration.logLevel)
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = configuration.logLevel
                return handler
            }
        }
        let logger = Logger(label: "pubsub")
        let server = try PubSubApplication(configuration: configuration, logger: logger)
        try await server.run { port in
            logger.notice("pubsub listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
        }
        logger.notice("pubsub stopped")
    }

    /// Flags win over the environment, which wins over defaults; bad values are errors, not guesses.
    func resolve(environment env: [String: String]) throws -> ServerConfiguration {
        var c = ServerConfiguration()
        func value<T>(_ flag: T?, _ name: String, _ parse: (String) -> T?) throws -> T? {
            if let flag { return flag }
            guard let raw = env[name], !raw.isEmpty else { return nil }
            guard let parsed = parse(raw) else { throw ValidationError("environment variable \(name)='\(raw)' is not valid") }
            return parsed
        }
        c.host = try value(host, "HOST", { $0 }) ?? c.host
        c.port = try value(port, "PORT", { Int($0) }) ?? c.port
        c.threads = try value(threads, "PUBSUB_THREADS", { Int($0) }) ?? c.threads
        c.historySize = try value(historySize, "PUBSUB_HISTORY_SIZE", { Int($0) }) ?? c.historySize
        c.maxMessageBytes = try value(maxMessageBytes, "PUBSUB_MAX_MESSAGE_BYTES", { Int($0) }) ?? c.maxMessageBytes
        c.heartbeatSeconds = try value(heartbeatSeconds, "PUBSUB_HEARTBEAT_SECONDS", { Double($0) }) ?? c.heartbeatSeconds
        c.idleTimeoutSeconds = try value(idleTimeoutSeconds, "PUBSUB_IDLE_TIMEOUT_SECONDS", { Double($0) }) ?? c.idleTimeoutSeconds
        c.shutdownGraceSeconds = try value(shutdownGraceSeconds, "PUBSUB_SHUTDOWN_GRACE_SECONDS", { Double($0) }) ?? c.shutdownGraceSeconds
        c.autoCreateTopics = try value(autoCreateTopics, "PUBSUB_AUTO_CREATE_TOPICS", { Bool($0.lowercased()) }) ?? c.autoCreateTopics
        c.permessageDeflate = try value(permessageDeflate, "PUBSUB_PERMESSAGE_DEFLATE", { Bool($0.lowercased()) }) ?? c.permessageDeflate
        c.httpIdleTimeoutSeconds = try value(httpIdleTimeout, "PUBSUB_HTTP_IDLE_TIMEOUT_SECONDS", { Double($0) }) ?? c.httpIdleTimeoutSeconds
        c.maxConnections = try value(maxConnections, "PUBSUB_MAX_CONNECTIONS", { Int($0) }) ?? c.maxConnections
        c.maxConnectionsPerIP = try value(maxConnectionsPerIp, "PUBSUB_MAX_CONNECTIONS_PER_IP", { Int($0) }) ?? c.maxConnectionsPerIP
        c.maxTopics = try value(maxTopics, "PUBSUB_MAX_TOPICS", { Int($0) }) ?? c.maxTopics
        c.maxSubscriptionsPerConnection =
            try value(maxSubscriptionsPerConnection, "PUBSUB_MAX_SUBSCRIPTIONS_PER_CONNECTION", { Int($0) }) ?? c.maxSubscriptionsPerConnection
        c.publishRate = try value(publishRate, "PUBSUB_PUBLISH_RATE", { Double($0) }) ?? c.publishRate
        c.publishBurst = try value(publishBurst, "PUBSUB_PUBLISH_BURST", { Int($0) }) ?? c.publishBurst
        let engineName = try value(engine, "PUBSUB_ENGINE", { $0 })
        if let engineName {
            guard let parsed = ServerConfiguration.Engine(rawValue: engineName.lowercased()) else {
                throw ValidationError("--engine must be memory or redis, not '\(engineName)'")
            }
            c.engine = parsed
        }
        c.redisURL = try value(redisUrl, "PUBSUB_REDIS_URL", { $0 }) ?? c.redisURL
        c.redisPrefix = try value(redisPrefix, "PUBSUB_REDIS_PREFIX", { $0 }) ?? c.redisPrefix
        c.redisTimeoutSeconds = try value(redisTimeoutSeconds, "PUBSUB_REDIS_TIMEOUT_SECONDS", { Double($0) }) ?? c.redisTimeoutSeconds
        if let mode = try value(auth, "PUBSUB_AUTH", { $0 }) {
            guard let parsed = ServerConfiguration.AuthMode(rawValue: mode.lowercased()) else {
                throw ValidationError("--auth must be none or token, not '\(mode)'")
            }
            c.auth = parsed
        }
        c.jwtSecret = try value(jwtSecret, "PUBSUB_JWT_SECRET", { $0 })
        c.jwtPublicKeyPath = try value(jwtPublicKey, "PUBSUB_JWT_PUBLIC_KEY", { $0 })
        let keys = apiKey.isEmpty ? (env["PUBSUB_API_KEY"].map { [$0] } ?? []) : apiKey
        c.apiKeys = keys.flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
        if let origins = try value(allowedOrigins, "PUBSUB_ALLOWED_ORIGINS", { $0 }) {
            c.allowedOrigins = origins.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        switch (try value(tlsCert, "PUBSUB_TLS_CERT", { $0 }), try value(tlsKey, "PUBSUB_TLS_KEY", { $0 })) {
        case (let cert?, let key?): c.tls = .init(certificatePath: cert, keyPath: key)
        case (nil, nil): break
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
        let maxQueue = try value(maxQueue, "PUBSUB_MAX_QUEUE", { Int($0) }) ?? c.queue.maxMessages
        let maxQueueBytes = try value(maxQueueBytes, "PUBSUB_MAX_QUEUE_BYTES", { Int($0) }) ?? c.queue.maxBytes
        let policy = try value(backpressure.map { try policyValue($0) }, "PUBSUB_BACKPRESSURE", { BackpressurePolicy(rawValue: $0) }) ?? c.queue.policy
        c.queue = QueueLimits(maxMessages: maxQueue, maxBytes: maxQueueBytes, policy: policy)
        let level = try value(logLevel, "LOG_LEVEL", { Logger.Level(rawValue: $0.lowercased()) == nil ? nil : $0.lowercased() })
        if let level {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else { throw ValidationError("unknown log level '\(level)'") }
            c.logLevel = parsed
        }
        if let format = try value(logFormat, "PUBSUB_LOG_FORMAT", { $0 }) {
            guard let parsed = ServerConfiguration.LogFormat(rawValue: format.lowercased()) else {
                throw ValidationError("--log-format must be text or json, not '\(format)'")
            }
            c.logFormat = parsed
        }
        do throws(ServerConfiguration.InvalidSetting) {
            try c.validate()
        } catch {
            throw ValidationError(error.description)
        }
        return c
    }

    private func policyValue(_ raw: String) throws -> BackpressurePolicy {
        guard let policy = BackpressurePolicy(rawValue: raw) else {
            throw ValidationError("--backpressure must be drop-oldest, drop-newest or disconnect")
        }
        return policy
    }
}
