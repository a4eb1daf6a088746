import Foundation
import Testing

@testable import PubSubServer

@Suite("Connection lifetime")
struct ConnectionLifetimeTests {
    /// A closed connection leaves nothing behind: its session, its subscriber queue and its
    /// buffers are freed, whichever side closed it and whether or not it had events queued.
    /// (A server that kept them grew by ~7 KB for every connection it had ever served.)
    @Test func closedConnectionsAreFreed() async throws {
        try await withServer({ $0.queue.maxMessages = 4 }) { port, http, server in
            _ = try await http.post("/api/topics", json: ["name": "lifetime"])
            var clients: [TestWebSocket] = []
            for _ in 0..<8 {
                let ws = try await connect(port)
                try await subscribe(ws, "lifetime")
                clients.append(ws)
            }
            // One subscriber stops reading with events queued; one publishes; one is closed by
            // the server for a protocol violation.
            try await clients[0].pauseReading()
            for n in 0..<20 {
                try await clients[1].send(json: ["type": "publish", "topic": "lifetime", "message": ["n": n]])
            }
            _ = try await clients[1].next(type: "ack")
            try await clients[2].sendFrame(opcode: 0x3, payload: [])  // reserved opcode
            _ = try await clients[2].waitForClose()
            for ws in clients { await ws.close() }

            let state = server.state
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline
                && (state.connectionsCurrent.load(ordering: .relaxed) > 0 || state.sessionsInMemory.load(ordering: .relaxed) > 0)
            {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(state.connectionsCurrent.load(ordering: .relaxed) == 0)
            #expect(state.sessionsInMemory.load(ordering: .relaxed) == 0)
        }
    }
}
