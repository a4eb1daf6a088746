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

    @Option(help: "trace, debug, info, notice, warning, error or critical. (env LOG_LEVEL, default info)")
    var logLevel: String?

    func run() async throws {
        // First, before any thread starts: glibc's allocator cache can only be sized at exec.
        MallocTuning.reexecIfUseful()
        let configuration = try resolve(environment: ProcessInfo.processInfo.environment)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = configuration.logLevel
            return handler
        }
        let logger = Logger(label: "pubsub")
        let server = PubSubApplication(configuration: configuration, logger: logger)
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
        let maxQueue = try value(maxQueue, "PUBSUB_MAX_QUEUE", { Int($0) }) ?? c.queue.maxMessages
        let maxQueueBytes = try value(maxQueueBytes, "PUBSUB_MAX_QUEUE_BYTES", { Int($0) }) ?? c.queue.maxBytes
        let policy = try value(backpressure.map { try policyValue($0) }, "PUBSUB_BACKPRESSURE", { BackpressurePolicy(rawValue: $0) }) ?? c.queue.policy
        c.queue = QueueLimits(maxMessages: maxQueue, maxBytes: maxQueueBytes, policy: policy)
        let level = try value(logLevel, "LOG_LEVEL", { Logger.Level(rawValue: $0.lowercased()) == nil ? nil : $0.lowercased() })
        if let level {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else { throw ValidationError("unknown log level '\(level)'") }
            c.logLevel = parsed
        }
        guard (0...65_535).contains(c.port) else { throw ValidationError("port must be 0 to 65535") }
        guard c.maxMessageBytes > 0, maxQueue > 0, maxQueueBytes > 0, c.historySize >= 0 else {
            throw ValidationError("queue limits and the message limit must be positive, history 0 or more")
        }
        guard c.heartbeatSeconds > 0, c.idleTimeoutSeconds > 0, c.shutdownGraceSeconds >= 0 else {
            throw ValidationError("heartbeat and idle timeout must be positive, shutdown grace 0 or more")
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
