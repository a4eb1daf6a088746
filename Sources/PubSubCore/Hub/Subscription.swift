/// How a subscription asks to catch up before joining the live stream (SPEC 2.1).
public enum ReplayRequest: Sendable, Equatable {
    case none
    /// Up to `n` of the newest retained messages.
    case lastN(Int)
    /// Every retained message with `seq > since`; `epoch` is the topic epoch the client last saw.
    case since(UInt64, epoch: String?)

    /// The history read that serves it.
    var query: HistoryQuery {
        switch self {
        case .none: .last(0)
        case .lastN(let n): .last(n)
        case .since(let since, _): .after(since)
        }
    }

    /// What of `history` is replayed, and (for `since`) whether that closes the client's gap.
    /// A client that saw another epoch gets everything retained, not recovered; `nil` asks
    /// for the history read again from the start (`.after(0)`).
    func replay(of history: History) -> (publications: [Publication], recovered: Bool?)? {
        guard case .since(let since, let clientEpoch) = self else { return (history.publications, nil) }
        if let clientEpoch, clientEpoch != history.epoch {
            // Read from `since`, not from the start: ask again, unless that was the start.
            guard since == 0 else { return nil }
            return (history.publications, false)
        }
        // A position this topic never reached: the client's view is from elsewhere.
        if since > history.seq { return ([], false) }
        let missing = history.seq - since
        return (history.publications, UInt64(history.publications.count) >= missing)
    }
}

/// What a subscribe did, for its `ack` frame.
public struct SubscribeReceipt: Sendable {
    public let topic: String
    /// This node's subscribers of the topic, this one included.
    public let subscriberCount: Int
    /// The topic's last seq before any replay.
    public let seq: UInt64
    public let epoch: String
    public let replayed: Int
    /// Set for `since` requests: false when the replay could not close the gap.
    public let recovered: Bool?
    /// A wildcard subscription's (SPEC 9): `topic` is the pattern, `subscriberCount` this
    /// node's subscribers of it, and there is no seq or epoch (each topic has its own).
    public var pattern = false
}
