import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("The pubsub binary")
struct ShutdownTests {
    /// The `pubsub` executable built beside this test bundle.
    static func binary() throws -> URL {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = me.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("pubsub")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        throw TestError("pubsub binary not found near \(me.path)")
    }

    @Test func sigtermDrainsClosesWith1001AndExitsZero() async throws {
        let process = Process()
        process.executableURL = try Self.binary()
        process.arguments = ["serve", "--port", "0", "--shutdown-grace-seconds", "2"]
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // Read the log until the listening line names the port.
        var log = ""
        var port: Int?
        let deadline = Date().addingTimeInterval(30)
        while port == nil && Date() < deadline {
            let data = stderr.fileHandleForReading.availableData
            if data.isEmpty { break }
            log += String(decoding: data, as: UTF8.self)
            if let range = log.range(of: #"port=(\d+)"#, options: .regularExpression) {
                port = Int(log[range].dropFirst(5))
            }
        }
        let serverPort = try #require(port, "no port in log: \(log)")
        let http = TestHTTP(port: serverPort)
        _ = try await http.post("/api/topics", json: ["name": "bye"])
        let clients = [try await connect(serverPort), try await connect(serverPort)]
        for client in clients { try await subscribe(client, "bye") }

        kill(process.processIdentifier, SIGTERM)
        for client in clients {
            let notice = try await client.next(timeout: 10)
            #expect(notice["msg"] as? String == "server_shutdown")
            #expect(try await client.waitForClose(timeout: 10) == 1001)
        }
        let exited = Date().addingTimeInterval(15)
        while process.isRunning && Date() < exited { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!process.isRunning)
        #expect(process.terminationReason == .exit)
        #expect(process.terminationStatus == 0)
    }

    @Test func badConfigurationIsRefused() async throws {
        let process = Process()
        process.executableURL = try Self.binary()
        process.arguments = ["serve", "--backpressure", "sometimes"]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
    }
}
