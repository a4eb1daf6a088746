import Logging
import NIOCore
import PubSubCore

/// How a connection tells its client about dropped messages (SPEC 2.4): at most one notice a
/// second, counting every drop since the last, written before the events that survived them.
/// Drops held back are told once a second has passed, by a timer the connection sets for
/// ``due``. WebSocket sessions and SSE streams both follow it.
struct DropNotices {
    private var unreported = 0
    private var lastNotice = NIODeadline.uptimeNanoseconds(0)

    /// Drops are held back for a notice still to come.
    var isHoldingBack: Bool { unreported > 0 }

    /// When the drops held back may be told.
    var due: NIODeadline { lastNotice + .seconds(1) }

    /// Adds `count` drops; returns how many to tell the client about now, or nil when there
    /// are none or the last notice went out less than a second ago.
    mutating func record(_ count: Int, now: NIODeadline = .now()) -> Int? {
        unreported += count
        guard unreported > 0, now >= due else { return nil }
        defer {
            unreported = 0
            lastNotice = now
        }
        return unreported
    }

    /// The log line that goes with each notice.
    static func log(_ dropped: Int, clientID: String, policy: BackpressurePolicy, to logger: Logger) {
        logger.warning("messages dropped", metadata: ["client_id": "\(clientID)", "dropped": "\(dropped)", "policy": "\(policy.rawValue)"])
    }
}
