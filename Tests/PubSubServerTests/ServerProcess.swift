import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The real `pubsub` executable (built beside this test bundle) in a process of its own, for
/// tests that need its exit status or its resident memory apart from the test process's.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private(set) var port = 0
    private let log = Pipe()

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
        process.standardError = log
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while port == 0 && Date() < deadline {
            let data = log.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            if let range = text.range(of: #"port=(\d+)"#, options: .regularExpression) {
                port = Int(text[range].dropFirst(5)) ?? 0
            }
        }
        guard port != 0 else {
            stop()
            throw TestError("the server did not start: \(text)")
        }
        // Later log lines must not fill the pipe and block the server.
        log.fileHandleForReading.readabilityHandler = { handle in _ = handle.availableData }
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

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
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        guard !process.isRunning else { throw TestError("the server is still running after \(timeout) s") }
        return process.terminationStatus
    }

    func stop() {
        log.fileHandleForReading.readabilityHandler = nil
        if process.isRunning { process.terminate() }
    }

    /// Runs `pubsub ARGUMENTS…` to its end, with `environment` added to this process's;
    /// returns its exit status and standard error.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }
}
