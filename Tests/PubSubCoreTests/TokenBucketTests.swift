import Testing

@testable import PubSubCore

@Suite("Token bucket")
struct TokenBucketTests {
    static let second: UInt64 = 1_000_000_000

    @Test func burstThenRate() {
        var bucket = TokenBucket(TokenBucket.Limit(rate: 2, burst: 3), now: 0)
        let taken = (0..<4).map { _ in bucket.take(now: 0) }
        #expect(taken == [true, true, true, false], "a full bucket passes the burst, then nothing")
        let wait = bucket.secondsUntilNext(now: 0)
        #expect(wait == 0.5)
        let later = [Self.second / 4, Self.second / 2, Self.second / 2].map { bucket.take(now: $0) }
        #expect(later == [false, true, false], "one token every half second")
        // Never more than the burst, however long it rests.
        let rested = (0..<4).map { _ in bucket.take(now: 100 * Self.second) }
        #expect(rested == [true, true, true, false])
    }

    @Test func aClockReadBehindTheLastOneChangesNothing() {
        var bucket = TokenBucket(TokenBucket.Limit(rate: 1, burst: 1), now: 10 * Self.second)
        let taken = [10, 9, 11].map { bucket.take(now: $0 * Self.second) }
        #expect(taken == [true, false, true])
    }

    @Test func fullness() {
        var bucket = TokenBucket(TokenBucket.Limit(rate: 10, burst: 5), now: 0)
        let fullAtStart = bucket.isFull(now: 0)
        _ = bucket.take(now: 0)
        let fullAfterTake = bucket.isFull(now: 0)
        let fullAfterRefill = bucket.isFull(now: Self.second / 10)
        #expect(fullAtStart && !fullAfterTake && fullAfterRefill)
    }
}
