import Foundation

/// A Python script of the repository's (under `Tests/`), run to its end against a server the
/// test started: the third-party clients, browsers and checkers the suite drives from Python,
/// with the packages `scripts/install-test-deps.sh` installs.
enum PythonScript {
    /// The repository's root (this file is in Tests/PubSubServerTests/).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs scripts/install-test-deps.sh unless Python can already import every one of `modules`
    /// (a run of `swift test` without `scripts/test.sh` first still finds its checkers).
    static func requireModules(_ modules: [String]) async throws {
        try await installDependencies(unless: ["python3", "-c", modules.map { "import \($0)" }.joined(separator: "; ")])
    }

    /// `python3 ROOT/PATH ARGUMENTS…`; its standard output and error together. Past `timeout`
    /// seconds it is terminated and this throws, with what it wrote so far.
    static func run(
        _ path: String, _ arguments: [String], timeout: Double, environment: [String: String] = [:]
    ) async throws -> (status: Int32, output: String) {
        let output = PipeCollector()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", root.appendingPathComponent(path).path] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output.writer
        process.standardError = output.writer
        try process.run()
        output.childStarted()
        do { try await waitUntilExit(process, timeout: timeout) } catch { throw TestError("\(error): \(output.contents.text)") }
        return (process.terminationStatus, try await output.untilEnd(timeout: 10))
    }

    /// Runs scripts/install-test-deps.sh when `probe` (a command) fails, as on a fresh machine;
    /// a test that then still lacks what it needs fails rather than skips.
    static func installDependencies(unless probe: [String]) async throws {
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = probe
        check.standardOutput = FileHandle.nullDevice
        check.standardError = FileHandle.nullDevice
        try check.run()
        // Polled, not waitUntilExit(): a blocked thread of the pool stalls the other tests.
        try await waitUntilExit(check, timeout: 60)
        guard check.terminationStatus != 0 else { return }
        let install = Process()
        install.executableURL = URL(fileURLWithPath: "/bin/bash")
        install.arguments = [root.appendingPathComponent("scripts/install-test-deps.sh").path]
        try install.run()
        try await waitUntilExit(install, timeout: 600)
        if install.terminationStatus != 0 { throw TestError("scripts/install-test-deps.sh failed (\(install.terminationStatus))") }
    }
}
