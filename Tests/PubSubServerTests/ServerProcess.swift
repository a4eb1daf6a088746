import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// The real `pubsub` executable (built beside this test bundle) in a process of its own, for
/// tests that need its exit status or its resident memory apart from the test process's.
///
/// Nothing here blocks a thread of Swift concurrency's pool: the child's standard error is read
/// by Foundation on a queue of its own (``PipeCollector``) and its start and exit are polled
/// with `Task.sleep`. A blocking read or `waitUntilExit()` holds one of the pool's threads (two,
/// on a 2-core machine) for as long as the child takes, and every other test waits: under a
/// sanitizer a child takes seconds to start, and the stalled tests' connections outlived the
/// server's 10 s request-head deadline ("I/O on closed channel").
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private(set) var port = 0
    private let log = PipeCollector()

    /// The `pubsub` executable built beside this test bundle, or the one `PUBSUB_TEST_BINARY`
    /// names (to run the same tests against another build).
    static func binary() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["PUBSUB_TEST_BINARY"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = me.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("pubsub")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw TestError("pubsub binary not found near \(me.path)")
    }

    /// Starts `pubsub serve --port 0 ARGUMENTS…` and waits until it logs the port it listens on.
    init(_ arguments: [String] = []) async throws {
        process.executableURL = try Self.binary()
        process.arguments = ["serve", "--port", "0"] + arguments
        process.standardError = log.writer
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        log.childStarted()
        let deadline = Date().addingTimeInterval(30)
        while true {
            let (text, ended) = log.contents
            // `port=4000` in text logs, `"port":"4000"` in JSON ones.
            if let range = text.range(of: #"port(=|":")\d+"#, options: .regularExpression),
                let port = Int(text[range].drop { !$0.isNumber }) {
                self.port = port
                return
            }
            if ended || Date() >= deadline {
                stop()
                throw TestError("the server did not start: \(text)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    /// What the server wrote to its standard error so far (the first ``PipeCollector/keptBytes``).
    var stderr: String { log.contents.text }

    /// Resident set size, from /proc/PID/statm.
    func residentBytes() throws -> Int {
        let statm = try String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8)
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { throw TestError("unreadable statm: \(statm)") }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Waits for the process to end by itself, for at most `timeout` seconds.
    func waitForExit(timeout: Double) async throws -> Int32 {
        try await waitUntilExit(process, timeout: timeout)
        return process.terminationStatus
    }

    func stop() {
        if process.isRunning { process.terminate() }
    }

    /// Runs `pubsub ARGUMENTS…` to its end, with `environment` added to this process's;
    /// returns its exit status and what it wrote.
    static func run(
        _ arguments: [String], environment: [String: String] = [:]
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stdout = PipeCollector()
        let stderr = PipeCollector()
        process.standardOutput = stdout.writer
        process.standardError = stderr.writer
        try process.run()
        stdout.childStarted()
        stderr.childStarted()
        try await waitUntilExit(process, timeout: 60)
        return (process.terminationStatus, try await stdout.untilEnd(timeout: 10), try await stderr.untilEnd(timeout: 10))
    }
}

/// Waits for `process` to end, polling (a `waitUntilExit()` would block a thread of the pool);
/// past `timeout` seconds it is terminated and this throws.
func waitUntilExit(_ process: Process, timeout: Double) async throws {
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning {
        guard Date() < deadline else {
            process.terminate()
            throw TestError("\(process.executableURL?.lastPathComponent ?? "the process") still running after \(timeout) s")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// A pipe for a child's output, read on a thread of its own as data comes (so the child never
/// blocks on a full pipe, and no test task blocks in a read), keeping the first ``keptBytes``.
///
/// A plain thread in blocking reads rather than `FileHandle.readabilityHandler`, whose dispatch
/// source takes a weak reference to the handle: LeakSanitizer reports that reference's side
/// table as leaked (it cannot see the pointer Swift packs into the handle's reference count),
/// and the thread is simpler anyway.
final class PipeCollector: Sendable {
    static let keptBytes = 1 << 20
    /// The child's end: give it as the process's `standardOutput` or `standardError`, then call
    /// ``childStarted()`` once the process runs.
    let writer: FileHandle
    private let state = NIOLockedValueBox<(text: String, bytes: Int, ended: Bool)>(("", 0, false))

    init() {
        let state = self.state
        let (reading, writing) = ChildPipe.make()
        writer = writing
        Thread.detachNewThread {
            while true {
                // Blocks until the child writes; empty at end of file (every writer closed).
                let data = reading.availableData
                let ended = data.isEmpty
                state.withLockedValue { state in
                    if ended {
                        state.ended = true
                    } else if state.bytes < Self.keptBytes {
                        state.text += String(decoding: data.prefix(Self.keptBytes - state.bytes), as: UTF8.self)
                        state.bytes += data.count
                    }
                }
                if ended { return }
            }
        }
    }

    /// Closes this process's copy of the child's end, so that the reader sees the end of file
    /// when the child exits. (Foundation does that itself for a `Pipe`, not for a `FileHandle`.)
    func childStarted() {
        try? writer.close()
    }

    /// The output so far, and whether the writer has closed the pipe.
    var contents: (text: String, ended: Bool) { state.withLockedValue { ($0.text, $0.ended) } }

    /// The whole output, once the writer has closed the pipe (within `timeout` seconds).
    func untilEnd(timeout: Double) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let (text, ended) = contents
            if ended { return text }
            guard Date() < deadline else { throw TestError("output still open after \(timeout) s: \(text)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// A channel for a child's standard stream whose two descriptors are close-on-exec from the
/// start: a Unix socket pair made with `SOCK_CLOEXEC` (Glibc's module does not offer `pipe2`),
/// which a child reads and writes like a pipe, with the same end of file.
///
/// Foundation's `Pipe()` makes inheritable descriptors, and `Process.run` on Linux closes in its
/// child only the descriptors open when it lists them. A pipe another test makes in between is
/// inherited by that child, and its reader then waits for the end of file until a child that
/// has nothing to do with it exits: a CI run under ASan failed with "output still open after
/// 10.0 s" on a process that had exited. The child still gets its own end: `Process` puts it on
/// 0, 1 or 2 with `dup2`, which leaves the copy inheritable.
enum ChildPipe {
    static func make() -> (read: FileHandle, write: FileHandle) {
        var descriptors: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &descriptors) == 0 else {
            fatalError("socketpair: \(String(cString: strerror(errno)))")
        }
        return (FileHandle(fileDescriptor: descriptors[0], closeOnDealloc: true), FileHandle(fileDescriptor: descriptors[1], closeOnDealloc: true))
    }
}
