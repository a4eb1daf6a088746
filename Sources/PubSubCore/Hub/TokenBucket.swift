/// A token bucket: it refills at `rate` tokens a second up to `burst`, and each publish takes
/// one; a publish that finds it empty is refused (SPEC 7, `--publish-rate`/`--publish-burst`).
/// Times are a monotonic clock's nanoseconds, passed in so one clock read can serve a batch.
///
///     var bucket = TokenBucket(TokenBucket.Limit(rate: 100, burst: 20), now: clock)
///     if !bucket.take(now: clock) { refuse(retryAfter: bucket.secondsUntilNext(now: clock)) }
public struct TokenBucket: Sendable {
    public struct Limit: Sendable, Equatable {
        /// Tokens added per second.
        public let rate: Double
        /// Tokens held at most: how many publishes may come at once.
        public let burst: Int

        public init(rate: Double, burst: Int) {
            precondition(rate > 0 && burst >= 1, "a rate limit needs a positive rate and a burst of at least 1")
            self.rate = rate
            self.burst = burst
        }
    }

    public let limit: Limit
    private var tokens: Double
    private var updated: UInt64

    /// A full bucket.
    public init(_ limit: Limit, now: UInt64) {
        self.limit = limit
        self.tokens = Double(limit.burst)
        self.updated = now
    }

    /// Takes a token if there is one.
    public mutating func take(now: UInt64) -> Bool {
        refill(now: now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Seconds until the next token (0 when one is there).
    public mutating func secondsUntilNext(now: UInt64) -> Double {
        refill(now: now)
        return tokens >= 1 ? 0 : (1 - tokens) / limit.rate
    }

    /// Whether the bucket is full at `now`, so forgetting it changes nothing.
    public mutating func isFull(now: UInt64) -> Bool {
        refill(now: now)
        return tokens >= Double(limit.burst)
    }

    private mutating func refill(now: UInt64) {
        // A clock read on another thread may be a little behind this bucket's last one.
        guard now > updated else { return }
        tokens = min(Double(limit.burst), tokens + Double(now - updated) / 1e9 * limit.rate)
        updated = now
    }
}
