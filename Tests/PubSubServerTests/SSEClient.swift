import Foundation
import NIOCore

/// One Server-Sent Events stream over a raw TCP connection: sends the GET, then parses the
/// chunked body as the SSE format says (events end at a blank line; `:` lines are comments).
final class SSEClient: Sendable {
    struct Event {
        var id: String?
        var event: String?
        var data: String?
        var comment: String?
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data((data ?? "").utf8))) as? [String: Any] ?? [:]
        }
    }

    let connection: RawConnection

    private init(connection: RawConnection) { self.connection = connection }

    /// Opens `path` (`extra`: more header lines, each ending in CRLF).
    static func open(_ port: Int, _ path: String, extra: String = "") async throws -> SSEClient {
        let connection = try await RawConnection.connect(port: port)
        try await connection.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\n\(extra)\r\n")
        return SSEClient(connection: connection)
    }

    /// The response head and everything the body held so far, de-chunked; nil before the head.
    func snapshot() throws -> (head: TestHTTP.Response, body: String)? {
        let bytes = Array(connection.text.utf8)
        guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let head = try TestHTTP.parse(Array(bytes[..<end.upperBound]))
        var body: [UInt8] = []
        var index = end.upperBound
        // Chunks: hex size CRLF, data CRLF; a partial chunk at the end is left for later.
        while let lineEnd = bytes[index...].firstRange(of: Array("\r\n".utf8)) {
            guard let size = Int(String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self), radix: 16) else { break }
            let start = lineEnd.upperBound
            guard size > 0, bytes.count >= start + size + 2 else { break }
            body += bytes[start..<start + size]
            index = start + size + 2
        }
        return (head, String(decoding: body, as: UTF8.self))
    }

    /// The response head, once it is in.
    func head(timeout: Double = 30) async throws -> TestHTTP.Response {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let snapshot = try snapshot() { return snapshot.head }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestError("no response head within \(timeout) s: \(connection.text)")
    }

    /// Every whole event (and comment) so far, in order.
    func events() throws -> [Event] {
        guard let body = try snapshot()?.body else { return [] }
        var events: [Event] = []
        var blocks = body.components(separatedBy: "\n\n")
        blocks.removeLast()  // unfinished (or empty after the last blank line)
        for block in blocks {
            var event = Event()
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix(":") {
                    event.comment = String(line.dropFirst()).trimmingCharacters(in: .whitespaces)
                    continue
                }
                let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                let field = String(parts[0])
                var value = parts.count > 1 ? String(parts[1]) : ""
                if value.hasPrefix(" ") { value.removeFirst() }
                switch field {
                case "id": event.id = value
                case "event": event.event = value
                case "data": event.data = event.data.map { $0 + "\n" + value } ?? value
                default: break
                }
            }
            events.append(event)
        }
        return events
    }

    /// Waits until the stream holds an event `matching`, and returns it with all before it.
    @discardableResult
    func waitFor(timeout: Double = 30, poll: Double = 0.01, _ matching: (Event) -> Bool) async throws -> (found: Event, all: [Event]) {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let events = try events()
            if let found = events.first(where: matching) { return (found, events) }
            guard Date() < deadline else { throw TestError("no such event within \(timeout) s: \(events.map { ($0.event, $0.id, $0.data) })") }
            try await Task.sleep(for: .seconds(poll))
        }
    }

    /// The `message` events so far.
    func messages() throws -> [Event] { try events().filter { $0.event == "message" } }

    /// Waits until the chunked body has ended (its last chunk) or the connection closed; true
    /// for the last chunk.
    func waitForEnd(timeout: Double = 30) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if connection.text.hasSuffix("\r\n0\r\n\r\n") { return true }
            if connection.isClosed { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestError("the stream did not end within \(timeout) s")
    }

    func pauseReading() async throws { try await connection.channel.setOption(ChannelOptions.autoRead, value: false).get() }

    func resumeReading() async throws {
        try await connection.channel.setOption(ChannelOptions.autoRead, value: true).get()
        connection.channel.read()
    }

    func close() async { await connection.close() }
}
