import Testing

@testable import PubSubCore

/// The latency window's buckets and percentiles, its minute, and the sampling marks.
@Suite("Delivery latency")
struct DeliveryLatencyTests {
    @Test func bucketsHoldValuesWithinTheirPrecision() {
        var previous = 0
        var nanos: UInt64 = 1_024
        while nanos < 60_000_000_000 {
            let bucket = LatencyWindow.bucket(nanos)
            #expect(bucket >= previous, "buckets rise with the value")
            previous = bucket
            let reported = LatencyWindow.value(ofBucket: bucket)
            #expect(abs(reported - Double(nanos)) <= Double(nanos) * 0.0625, "\(nanos) ns reported as \(reported)")
            nanos = nanos + nanos / 7 + 1
        }
        #expect(LatencyWindow.bucket(0) == 0 && LatencyWindow.bucket(1_023) == 0)
        #expect(LatencyWindow.bucket(.max) == LatencyWindow.buckets - 1)
    }

    @Test func percentilesOfAMinute() throws {
        var window = LatencyWindow()
        let now: UInt64 = 1_000 * 1_000_000_000
        for ms in 1...100 { window.record(UInt64(ms) * 1_000_000, at: now) }
        let summary = try #require(window.summary(at: now))
        #expect(summary.samples == 100)
        #expect(abs(summary.p50 - 50) <= 50 * 0.0625)
        #expect(abs(summary.p90 - 90) <= 90 * 0.0625)
        #expect(abs(summary.p99 - 99) <= 99 * 0.0625)
        #expect(summary.max == 100)
        // 45 s on, still within the minute; a minute on, gone.
        #expect(window.summary(at: now + 45_000_000_000)?.samples == 100)
        #expect(window.summary(at: now + 61_000_000_000) == nil)
        // A new sample in a slot reused after a minute replaces what it held.
        window.record(5_000_000, at: now + 60_000_000_000)
        let later = try #require(window.summary(at: now + 60_000_000_000))
        #expect(later.samples == 1 && later.max == 5)
    }

    @Test func marksSampleAtMostOncePerPeriodAndASliceOfTheSubscribers() {
        let latency = TopicLatency()
        let first = latency.mark(subscribers: 1_000)
        #expect(first.receivedAtNanos != 0)
        #expect(first.subscriberMask == 15, "1,000 subscribers: one in 16 records, about 64")
        #expect(latency.mark(subscribers: 1_000).receivedAtNanos == 0, "within the millisecond: not sampled")
        let selected = (0..<1_000).filter { first.selects(salt: UInt32($0) &* 2_654_435_761, seq: 7) }.count
        #expect(selected > 20 && selected < 130, "\(selected)")
        #expect(TopicLatency().mark(subscribers: 10).subscriberMask == 0, "few subscribers: every one records")
        #expect(TopicLatency().mark(subscribers: 0).receivedAtNanos == 0)
        #expect(!LatencyMark.none.selects(salt: 0, seq: 0))
    }
}
