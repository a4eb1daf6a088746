#if canImport(Glibc)
import Glibc
#endif

/// The one allocator setting the server changes: glibc's per-thread cache of freed blocks
/// (tcache) keeps 7 blocks per size class by default. Each publish makes one publication, and
/// the queue that holds an event-loop tick's worth of them (up to four socket reads of 64 KB:
/// over a thousand small publishes) frees them together when it drains; past the seventh, every free and the next tick's
/// every malloc go to glibc's bins, the slow path. How allocation's share of the server's time
/// falls with larger caches is in docs/design.md ("Build and process settings").
///
/// glibc reads its tunables only when a process starts, from `GLIBC_TUNABLES`, so `pubsub
/// serve` sets it and executes itself again, once, before anything else runs. It leaves alone a
/// `GLIBC_TUNABLES` that already sets the count, and does nothing with
/// `PUBSUB_MALLOC_TUNING=off` or where there is no glibc.
public enum MallocTuning {
    static let tunable = "glibc.malloc.tcache_count"
    /// Most of the gain for a bounded cost: a thread's cache holds only blocks it freed, at
    /// most this many per size class; for the publications' class (320 bytes) 2.6 MB a thread.
    /// (The largest count would keep 21 MB of them per thread that frees publications it did
    /// not allocate, as a subscriber's thread does for another thread's publisher.)
    static let count = 8192
    static let optOut = "PUBSUB_MALLOC_TUNING"
    /// Set for the second run, so it can never execute itself again whatever glibc made of the
    /// setting.
    static let marker = "PUBSUB_MALLOC_TUNED"

    /// The `GLIBC_TUNABLES` to execute with, or nil when there is nothing to change.
    static func tunables(current: String?, optOut: String?, marker: String? = nil) -> String? {
        if optOut == "off" || marker != nil { return nil }
        let setting = "\(tunable)=\(count)"
        guard let current, !current.isEmpty else { return setting }
        if current.split(separator: ":").contains(where: { $0.hasPrefix("\(tunable)=") }) { return nil }
        return current + ":" + setting
    }

    /// Executes this program again with the tuned `GLIBC_TUNABLES` (same arguments, same
    /// process id); returns when there is nothing to do or the exec failed (the server then
    /// runs untuned: only slower).
    public static func reexecIfUseful() {
        #if canImport(Glibc) && os(Linux)
        func variable(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        let current = variable("GLIBC_TUNABLES")
        guard let value = tunables(current: current, optOut: variable(optOut), marker: variable(marker)) else { return }
        setenv("GLIBC_TUNABLES", value, 1)
        setenv(marker, "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Still here: the exec failed. Run as we are, with the environment as it was.
        if let current { setenv("GLIBC_TUNABLES", current, 1) } else { unsetenv("GLIBC_TUNABLES") }
        unsetenv(marker)
        #endif
    }
}
