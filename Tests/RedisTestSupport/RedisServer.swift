import Foundation
import NIOCore
import NIOPosix

@testable import RedisClient

/// A real `redis-server` on a free port of 127.0.0.1, for the tests' lifetime: no persistence,
/// ended by its PID. `scripts/install-test-deps.sh` installs it (Debian's `redis-server`).
final class RedisServer: @unchecked Sendable {
    let port: Int
    private let process: Process

    /// `arguments`: more of redis-server's settings, such as `["--requirepass", "pw"]`.
    init(arguments: [String] = []) async throws {
        port = try Self.freePort()
        process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"] + arguments
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

    var url: String { "redis://127.0.0.1:\(port)" }

    /// Ends it with SIGKILL: a child of the test process may inherit SIGTERM blocked (the
    /// lifecycle code of other tests in the process handles it), and then `terminate()` waits
    /// forever. Nothing is lost: it keeps nothing on disk.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }

    /// `PUBSUB_REDIS_SERVER`, else the first `redis-server` on the PATH.
    static var executable: String {
        if let path = ProcessInfo.processInfo.environment["PUBSUB_REDIS_SERVER"] { return path }
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
        return directories.map { "\($0)/redis-server" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/redis-server"
    }

    /// A port nothing listens on: one the kernel picked for a socket just closed.
    static func freePort() throws -> Int {
        let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        return channel.localAddress?.port ?? 0
    }
}
