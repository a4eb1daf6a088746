import NIOCore
import PubSubCore
import Synchronization

/// `--publish-rate` for REST publishes: one ``TokenBucket`` per client address. Full buckets
/// are forgotten (a full bucket is what a new one would be), so the table holds only the
/// addresses that published within the last `burst / rate` seconds.
///
///     try limiter.take(address: "10.0.0.7")   // throws RATE_LIMITED with retry_after
final class PublishRateLimiter: Sendable {
    private let limit: TokenBucket.Limit
    private struct Table {
        var buckets: [String: TokenBucket] = [:]
        var lastSweep: UInt64 = 0
    }
    private let table = Mutex(Table())

    init(limit: TokenBucket.Limit) {
        self.limit = limit
    }

    /// Takes one publish for `address`, or throws `RATE_LIMITED`.
    func take(address: String, now: UInt64 = NIODeadline.now().uptimeNanoseconds) throws(PubSubError) {
        let refusedFor: Double? = table.withLock(of: self) { table in
            sweep(&table, now: now)
            var bucket = table.buckets[address] ?? TokenBucket(limit, now: now)
            defer { table.buckets[address] = bucket }
            return bucket.take(now: now) ? nil : bucket.secondsUntilNext(now: now)
        }
        if let refusedFor { throw .rateLimited(retryAfter: refusedFor) }
    }

    /// At most once a second: forgets the buckets that have filled up again.
    private func sweep(_ table: inout Table, now: UInt64) {
        guard now &- table.lastSweep >= 1_000_000_000 else { return }
        table.lastSweep = now
        table.buckets = table.buckets.filter { _, bucket in
            var bucket = bucket
            return !bucket.isFull(now: now)
        }
    }

    /// Addresses with a bucket (for tests).
    var addressCount: Int { table.withLock(of: self) { $0.buckets.count } }
}
