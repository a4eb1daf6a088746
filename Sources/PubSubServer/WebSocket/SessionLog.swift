import Logging
import NIOCore
import PubSubCore

/// The context of a connection's log lines (docs/operations.md, "Logs"): who, from where, over
/// what, as whom (never the token), and why it ended.
enum SessionLog {
    static func opened(clientID: String, format: Int, remote: SocketAddress?, user: String?) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["client_id": "\(clientID)", "protocol": "\(WireFormat.names[format])"]
        if let remote, let ip = remote.ipAddress { metadata["remote"] = "\(ip):\(remote.port ?? 0)" }
        if let user { metadata["user"] = "\(user)" }
        return metadata
    }

    static func closed(clientID: String, reason: String?, openedAt: NIODeadline) -> Logger.Metadata {
        [
            "client_id": "\(clientID)", "reason": "\(reason ?? "connection lost")",
            "duration_s": "\(Double((NIODeadline.now() - openedAt).nanoseconds / 1_000_000) / 1000)",
        ]
    }

    static func slowConsumer(clientID: String, limits: QueueLimits) -> Logger.Metadata {
        [
            "client_id": "\(clientID)", "max_queue": "\(limits.maxMessages)", "max_queue_bytes": "\(limits.maxBytes)",
            "policy": "\(limits.policy.rawValue)",
        ]
    }
}
