import Foundation
import NIOCore
import NIOPosix

import RedisClient

/// A real `redis-server` on a free port of 127.0.0.1, for the tests' lifetime (no persistence
/// unless asked), ended by its PID. `scripts/install-test-deps.sh` installs it (Debian's `redis-server`).
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    private var process: Process

    /// `arguments`: more of redis-server's settings, such as `["--requirepass", "pw"]`.
    /// `persistent`: an append-only file written on every command, in a directory of its own,
    /// so that ``restart()`` brings everything back.
    public init(arguments: [String] = [], persistent: Bool = false) async throws {
        port = try Self.freePort()
        var settings = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--protected-mode", "no"]
        if persistent {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pubsub-redis-\(port)-\(UInt32.random(in: 0...UInt32.max))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            self.directory = directory
            settings += ["--dir", directory.path, "--appendonly", "yes", "--appendfsync", "always"]
        } else {
            self.directory = nil
            settings += ["--appendonly", "no"]
        }
        self.arguments = settings + arguments
        process = Process()
        try await launch()
    }

    private let arguments: [String]
    private let directory: URL?

    private func launch() async throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Ready once it accepts a connection (within 10 s).
        for _ in 0..<200 {
            if let channel = try? await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get() {
                try? await channel.close()
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        stop()
        throw RESPError.badURL("redis-server did not start on port \(port)")
    }

    /// Starts it again on the same port (after ``stop()``), with what it kept if persistent.
    public func restart() async throws {
        stop()
        try await launch()
    }

    /// Pauses it (SIGSTOP): connections stay open and nothing is answered, as a Redis that hangs.
    public func pause() { kill(process.processIdentifier, SIGSTOP) }
    public func resume() { kill(process.processIdentifier, SIGCONT) }

    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Ends it with SIGKILL: a child of the test process may inherit SIGTERM blocked (the
    /// lifecycle code of other tests in the process handles it), and then `terminate()` waits
    /// forever. Nothing is lost: it keeps nothing on disk.
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGCONT)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// `PUBSUB_REDIS_SERVER`, else the first `redis-server` on the PATH.
    public static var executable: String {
        if let path = ProcessInfo.processInfo.environment["PUBSUB_REDIS_SERVER"] { return path }
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        return directories.map { "\($0)/redis-server" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/redis-server"
    }

    /// A port nothing listens on: one the kernel picked for a socket just closed.
    public static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        return channel.localAddress?.port ?? 0
    }
}
