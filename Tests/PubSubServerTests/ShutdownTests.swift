import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("The pubsub binary")
struct ShutdownTests {
    @Test func sigtermDrainsClosesWith1001AndExitsZero() async throws {
        let server = try await ServerProcess(["--shutdown-grace-seconds", "2"])
        defer { server.stop() }
        let serverPort = server.port
        let http = TestHTTP(port: serverPort)
        _ = try await http.post("/api/topics", json: ["name": "bye"])
        let clients = [try await connect(serverPort), try await connect(serverPort)]
        for client in clients { try await subscribe(client, "bye") }

        server.signal(SIGTERM)
        for client in clients {
            let notice = try await client.next(timeout: 10)
            #expect(notice["msg"] as? String == "server_shutdown")
            #expect(try await client.waitForClose(timeout: 10) == 1001)
        }
        #expect(try await server.waitForExit(timeout: 15) == 0)
        #expect(server.process.terminationReason == .exit)
    }

    @Test func badConfigurationIsRefused() async throws {
        #expect(try await ServerProcess.run(["serve", "--backpressure", "sometimes"]).status != 0)
    }
}
