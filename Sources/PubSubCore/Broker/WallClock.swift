#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one clock of the server: publication timestamps (`ts`), `created_at`, uptime and every
/// `timestamp` field read it, so they agree with one another.
///
///     let ts = WallClock.nowMillis()
public enum WallClock {
    /// Milliseconds since the Unix epoch, from the real-time clock.
    public static func nowMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
