/// Reconnect delays: exponential, capped, with jitter so that clients dropped together (a
/// server restart) do not come back together. Attempt n waits between half and all of
/// `min(maximum, initial × 2^n)`, as pubsub.js does.
struct Backoff: Sendable, Hashable {
    var initial: Duration
    var maximum: Duration

    /// `jitter` in 0..<1 picks the point in the upper half of the ceiling.
    func delay(attempt: Int, jitter: Double) -> Duration {
        var ceiling = initial * (1 << min(max(attempt, 0), 30))
        if ceiling > maximum { ceiling = maximum }
        let unit = min(max(jitter, 0), 1)
        return ceiling / 2 + (ceiling / 2) * unit
    }
}
