import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The clock latencies are measured with: monotonic, unaffected by changes to the wall clock.
public enum MonotonicClock {
    public static func nanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// The same clock to a few milliseconds, at a fraction of the cost (no time-stamp counter
    /// read): enough to decide whether a publication is sampled.
    static func coarseNanos() -> UInt64 {
        var ts = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        #else
        clock_gettime(CLOCK_MONOTONIC, &ts)
        #endif
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

/// Which deliveries of one publication are timed (SPEC 8): when the node had the publication,
/// and which of its subscribers record the time its frame reached their socket.
///
/// Measuring every delivery would cost a clock read and a locked histogram update per event;
/// instead a topic samples at most one publication per millisecond, and of a sampled
/// publication about ``TopicLatency/deliveriesPerSample`` of its subscribers record, a
/// different share of them each time (chosen by each connection's salt and the seq).
public struct LatencyMark: Sendable {
    /// `MonotonicClock` nanoseconds; 0 when the publication is not sampled.
    public let receivedAtNanos: UInt64
    /// A subscriber records when its salt plus the seq has these bits clear.
    @usableFromInline let subscriberMask: UInt32

    public static let none = LatencyMark(receivedAtNanos: 0, subscriberMask: 0)

    init(receivedAtNanos: UInt64, subscriberMask: UInt32) {
        self.receivedAtNanos = receivedAtNanos
        self.subscriberMask = subscriberMask
    }

    /// Whether the subscriber with `salt` times its delivery of the publication `seq`.
    @inlinable
    public func selects(salt: UInt32, seq: UInt64) -> Bool {
        receivedAtNanos != 0 && (salt &+ UInt32(truncatingIfNeeded: seq)) & subscriberMask == 0
    }
}

/// One topic's delivery latency over the last minute: publish received to frame written to
/// each subscriber's socket, from sampled deliveries (``LatencyMark``). Any thread records;
/// the window is allocated with the first sample, so a topic nobody reads costs nothing.
public final class TopicLatency: Sendable {
    static let samplePeriodNanos: UInt64 = 1_000_000
    static let deliveriesPerSample = 64
    private let lastSampleNanos = Atomic<UInt64>(0)
    private let window = Mutex<LatencyWindow?>(nil)

    public init() {}

    /// The mark for the next publications of a topic with `subscribers` live subscribers: a
    /// sample when the last one is at least a millisecond old. Called under the topic's lock.
    @inline(__always)
    func mark(subscribers: Int) -> LatencyMark {
        let coarse = MonotonicClock.coarseNanos()
        guard coarse &- lastSampleNanos.load(ordering: .relaxed) >= Self.samplePeriodNanos, subscribers > 0 else { return .none }
        lastSampleNanos.store(coarse, ordering: .relaxed)
        // A power of two at least subscribers / deliveriesPerSample, less one.
        let share = max(1, subscribers / Self.deliveriesPerSample)
        let mask = UInt32(truncatingIfNeeded: (1 << (Int.bitWidth - (share - 1).leadingZeroBitCount)) - 1)
        return LatencyMark(receivedAtNanos: MonotonicClock.nanos(), subscriberMask: mask)
    }

    /// One delivery, `nanos` after its publication was received, timed at `now`.
    public func record(_ nanos: UInt64, at now: UInt64) {
        window.withLock(of: self) { window in
            if window == nil { window = LatencyWindow() }
            window!.record(nanos, at: now)
        }
    }

    /// p50, p90, p99 and max over the last minute; nil when nothing was sampled in it.
    public func summary(at now: UInt64 = MonotonicClock.nanos()) -> LatencySummary? {
        window.withLock(of: self) { window in window?.summary(at: now) }
    }
}

extension Publication {
    /// Records this delivery, timed at `now`, in its topic's window; returns its latency.
    public func recordDeliveryLatency(at now: UInt64) -> UInt64 {
        let nanos = now &- content.latencyMark.receivedAtNanos
        topicCounters.latency.record(nanos, at: now)
        return nanos
    }
}

/// Latency percentiles of a topic, in milliseconds.
public struct LatencySummary: Sendable, Equatable {
    public let p50: Double
    public let p90: Double
    public let p99: Double
    public let max: Double
    /// Deliveries timed in the window.
    public let samples: Int
}

/// Counts of latencies in log-linear buckets (8 per power of two: a value is reported within
/// 6.25 % of its bucket), kept in four slots of 15 s: the current one and the three before it
/// make the last minute.
struct LatencyWindow {
    static let slotNanos: UInt64 = 15_000_000_000
    static let slots = 4
    static let subBucketBits = 3
    /// Below 2^10 ns (about a microsecond) all in the first bucket; 2^36 ns (69 s) and above
    /// in the last.
    static let lowestPower = 10
    static let highestPower = 36
    static let buckets = 1 + (highestPower - lowestPower) << subBucketBits

    private var counts = [UInt32](repeating: 0, count: slots * buckets)
    private var slotIndex = [UInt64](repeating: .max, count: slots)
    private var slotMax = [UInt64](repeating: 0, count: slots)

    static func bucket(_ nanos: UInt64) -> Int {
        guard nanos >= 1 << lowestPower else { return 0 }
        let power = UInt64.bitWidth - 1 - nanos.leadingZeroBitCount
        guard power < highestPower else { return buckets - 1 }
        let sub = Int(nanos >> (power - subBucketBits)) & ((1 << subBucketBits) - 1)
        return 1 + (power - lowestPower) << subBucketBits + sub
    }

    /// The middle of a bucket's range, in nanoseconds.
    static func value(ofBucket bucket: Int) -> Double {
        guard bucket > 0 else { return Double(1 << lowestPower) / 2 }
        let power = lowestPower + (bucket - 1) >> subBucketBits
        let sub = (bucket - 1) & ((1 << subBucketBits) - 1)
        let width = Double(UInt64(1) << (power - subBucketBits))
        return Double(UInt64(1) << power) + (Double(sub) + 0.5) * width
    }

    mutating func record(_ nanos: UInt64, at now: UInt64) {
        let index = now / Self.slotNanos
        let slot = Int(index % UInt64(Self.slots))
        if slotIndex[slot] != index {
            slotIndex[slot] = index
            slotMax[slot] = 0
            for bucket in 0..<Self.buckets { counts[slot * Self.buckets + bucket] = 0 }
        }
        counts[slot * Self.buckets + Self.bucket(nanos)] &+= 1
        slotMax[slot] = Swift.max(slotMax[slot], nanos)
    }

    func summary(at now: UInt64) -> LatencySummary? {
        let current = now / Self.slotNanos
        var merged = [UInt64](repeating: 0, count: Self.buckets)
        var total: UInt64 = 0
        var maxNanos: UInt64 = 0
        for slot in 0..<Self.slots where slotIndex[slot] != .max && slotIndex[slot] + UInt64(Self.slots) > current {
            for bucket in 0..<Self.buckets {
                let count = UInt64(counts[slot * Self.buckets + bucket])
                merged[bucket] += count
                total += count
            }
            maxNanos = Swift.max(maxNanos, slotMax[slot])
        }
        guard total > 0 else { return nil }
        func percentile(_ fraction: Double) -> Double {
            let rank = UInt64((fraction * Double(total)).rounded(.up))
            var seen: UInt64 = 0
            for bucket in 0..<Self.buckets {
                seen += merged[bucket]
                if seen >= Swift.max(rank, 1) { return Swift.min(Self.value(ofBucket: bucket), Double(maxNanos)) / 1e6 }
            }
            return Double(maxNanos) / 1e6
        }
        return LatencySummary(p50: percentile(0.5), p90: percentile(0.9), p99: percentile(0.99), max: Double(maxNanos) / 1e6, samples: Int(total))
    }
}
