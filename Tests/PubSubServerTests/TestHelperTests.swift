import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The helpers that run child processes must not hold a thread of Swift concurrency's pool (as
/// many threads as the machine has cores) while a child runs: every other test would wait.
/// Under a sanitizer the `pubsub` children take seconds to start and to exit, and tests stalled
/// behind blocking reads and `waitUntilExit()` outlived the server's 10 s request-head deadline
/// ("I/O on closed channel").
@Suite("Test helpers")
struct TestHelperTests {
    /// On an executor of one thread, a task keeps running while two others wait for children
    /// that run for 3 s. It steps with `Task.yield()`, which comes back through that executor
    /// alone, so neither the load on the shared pool (the rest of the suite) nor timers can
    /// stretch its steps: only a waiter that blocks the thread can.
    @Test func waitingForChildrenLeavesTheThreadFree() async throws {
        let executor = OneThreadExecutor()
        defer { executor.stop() }
        let started = Date()
        let children = try (0..<2).map { _ in
            let child = Process()
            child.executableURL = URL(fileURLWithPath: "/bin/sleep")
            child.arguments = ["3"]
            try child.run()
            return child
        }
        let longestGap = try await withTaskExecutorPreference(executor) {
            try await withThrowingTaskGroup(of: Double.self) { group in
                for child in children {
                    group.addTask {
                        try await waitUntilExit(child, timeout: 60)
                        return 0
                    }
                }
                group.addTask {
                    // The longest gap between two steps (the first from the start: a task that
                    // cannot start for a while waited as much).
                    var longest = 0.0
                    var last = started
                    repeat {
                        await Task.yield()
                        usleep(1000)
                        let now = Date()
                        longest = max(longest, now.timeIntervalSince(last))
                        last = now
                    } while Date().timeIntervalSince(started) < 3.5
                    return longest
                }
                return try await group.reduce(0, max)
            }
        }
        #expect(longestGap < 1.5, "a task waited \(longestGap) s for the thread")
    }

    /// A child started by another test while a collector exists does not keep the collector's
    /// stream open: here a `sleep 30` spawned with no file actions at all (what a concurrent
    /// `Process.run` does to a descriptor made after it listed the ones to close) inherits
    /// nothing, and the collector sees its own child's end of file at once.
    @Test func aCollectorsStreamIsNotInheritedByOtherChildren() async throws {
        let output = PipeCollector()
        var sleeper: pid_t = 0
        let arguments: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("30"), nil]
        defer { for argument in arguments { free(argument) } }
        #expect(posix_spawn(&sleeper, "/bin/sleep", nil, nil, arguments, environ) == 0)
        defer {
            kill(sleeper, SIGKILL)
            var status: Int32 = 0
            waitpid(sleeper, &status, 0)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/echo")
        process.arguments = ["done"]
        process.standardOutput = output.writer
        try process.run()
        output.childStarted()
        try await waitUntilExit(process, timeout: 30)
        #expect(try await output.untilEnd(timeout: 10) == "done\n")
    }

    /// More output than a pipe holds (64 KiB) is collected whole while the child runs.
    @Test func collectsMoreThanAPipeHolds() async throws {
        let output = PipeCollector()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "yes | head -c 200000"]
        process.standardOutput = output.writer
        try process.run()
        output.childStarted()
        try await waitUntilExit(process, timeout: 30)
        let text = try await output.untilEnd(timeout: 10)
        #expect(text.utf8.count == 200_000)
        #expect(text.allSatisfy { $0 == "y" || $0 == "\n" })
    }
}

/// A task executor that runs its jobs one at a time on a thread of its own.
final class OneThreadExecutor: TaskExecutor, @unchecked Sendable {
    /// Guards `jobs` and `stopped`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false

    init() {
        Thread.detachNewThread { [self] in run() }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
