/// A subscription as the machine keeps it, and the rules of its seq and epoch: where the
/// events after an ack start, and the gap, if any, before them.
extension ClientMachine {
    struct Subscription: Sendable, Hashable {
        let id: Int
        let topic: String
        let isPattern: Bool
        let start: SubscriptionStart
        /// The last seq delivered (or, before any, the one the next event must follow).
        var lastSeq: Int?
        /// The topic's epoch that `lastSeq` belongs to.
        var epoch: String?
        /// The request id of its subscribe in flight.
        var request: String?
        /// Acked on the current connection: its events are delivered.
        var active = false
        /// The first ack came.
        var confirmed = false
        /// Resubscribes refused as `UNAVAILABLE` in a row.
        var retries = 0
    }

    /// NATS-style patterns over `.`-separated segments (SPEC 9): `*` one segment, `>` the rest.
    /// The server's rules (`TopicPattern` in PubSubCore, which this library does not depend
    /// on), so that an event goes to the subscriptions the server matched it for.
    static func isPattern(_ topic: String) -> Bool {
        topic.split(separator: ".", omittingEmptySubsequences: false).contains { $0 == "*" || $0 == ">" }
    }

    /// Whether `topic` is `pattern` or matches it: `*` stands for one non-empty segment, `>` as
    /// the last segment for one or more, not all empty.
    static func matches(_ pattern: String, _ topic: String) -> Bool {
        let p = pattern.split(separator: ".", omittingEmptySubsequences: false)
        let t = topic.split(separator: ".", omittingEmptySubsequences: false)
        for (i, segment) in p.enumerated() {
            if segment == ">" { return i < t.count && !(i == t.count - 1 && t[i].isEmpty) }
            guard i < t.count, segment == "*" ? !t[i].isEmpty : segment == t[i] else { return false }
        }
        return p.count == t.count
    }
}

extension ClientMachine.Subscription {
    /// Takes in a `subscribed` ack: where the events that follow start, and what, if anything,
    /// is lost between the last seq delivered and them.
    ///
    /// The replay brings seqs `ack.seq - replayed + 1 … ack.seq`, then live events follow. So
    /// with `base = ack.seq - replayed`:
    /// - nothing delivered yet (`latest`, `lastN`): the next event follows `base`;
    /// - the epoch changed (the topic was recreated, the server restarted): everything after
    ///   `lastSeq` of the old epoch is lost, and the new epoch's `1 … base`;
    /// - same epoch, `base > lastSeq`: `lastSeq + 1 … base` are no longer retained (the ack's
    ///   `recovered: false`);
    /// - `lastSeq` beyond the topic's seq (a `since` from elsewhere): take what comes.
    mutating func acknowledge(_ ack: ServerFrame.Subscribed, recovering: Bool) -> PubSubGap? {
        if isPattern {
            // What matched while the client was away is not replayed; the server cannot say what.
            return recovering ? PubSubGap(topic: topic, epoch: nil, missing: nil) : nil
        }
        let base = max(ack.seq - ack.replayed, 0)
        guard let last = lastSeq else {
            lastSeq = base
            epoch = ack.epoch
            return nil
        }
        if let previous = epoch, let current = ack.epoch, previous != current {
            lastSeq = base
            epoch = current
            return PubSubGap(topic: topic, epoch: current, missing: base >= 1 ? 1...base : nil, previousEpoch: previous, previousSeq: last)
        }
        epoch = ack.epoch ?? epoch
        if base > last {
            lastSeq = base
            return PubSubGap(topic: topic, epoch: epoch, missing: (last + 1)...base)
        }
        if last > ack.seq { lastSeq = base }
        return nil
    }
}
