import NIOCore

extension BenchRun {
    /// Subscribes `count` wildcard patterns on subjects the run does not publish to
    /// (`other-<i>.*`), a hundred per connection, held until the run shuts down: what a
    /// publish to a topic no pattern matches costs while patterns exist.
    func holdPatterns(_ count: Int) async throws {
        var next = 0
        while next < count {
            let batch = min(100, count - next)
            let connection = try await BenchConnection.connect(
                group: group, host: target.host, port: target.port, path: target.webSocketPath
            )
            let acked = loop.makePromise(of: Void.self)
            let first = next
            try await loop.submit {
                var acks = 0
                connection.onText = { frame in
                    if frame.hasPrefix("{\"type\":\"ack\"") {
                        acks += 1
                        if acks == batch { acked.succeed(()) }
                    } else if frame.hasPrefix("{\"type\":\"error\"") {
                        acked.fail(BenchError("pattern subscribe refused: \(String(buffer: frame))"))
                    }
                }
                var frames = ByteBuffer()
                for index in first..<(first + batch) {
                    BenchConnection.appendTextFrame("{\"type\":\"subscribe\",\"topic\":\"other-\(index).*\"}", to: &frames)
                }
                connection.write(frames)
                self.subscribers.append(connection)
            }.get()
            try await acked.futureResult.get()
            next += batch
        }
    }
}
