import Foundation

/// CPU time and resident memory of processes (a server, or a cluster's nodes), summed, from
/// /proc (Linux).
struct ProcessStats {
    let pids: [Int32]

    /// utime + stime in seconds (10 ms resolution), summed.
    func cpuSeconds() -> Double? {
        let each = pids.map(cpuSeconds(of:))
        return each.contains { $0 == nil } ? nil : each.reduce(0) { $0 + $1! }
    }

    /// VmRSS in bytes, summed.
    func residentBytes() -> Int? {
        let each = pids.map(residentBytes(of:))
        return each.contains { $0 == nil } ? nil : each.reduce(0) { $0 + $1! }
    }

    private func cpuSeconds(of pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
        guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        return (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    private func residentBytes(of pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}

/// Monotonic nanoseconds.
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
