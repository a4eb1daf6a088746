import Foundation
import Histogram
import NIOCore
import NIOPosix

/// Shared state of one benchmark run. Everything mutable is touched on `loop` only.
final class BenchRun: @unchecked Sendable {
    struct Endpoint {
        var host: String
        var port: Int
    }

    struct Target {
        /// The servers (a cluster's nodes): the publisher and REST calls use the first,
        /// subscribers take them in turn.
        var endpoints: [Endpoint]
        var topic: String
        /// The servers' processes, for CPU and memory (summed).
        var pids: [Int32]
        /// A credential for a server with `--auth token`.
        var token: String?
        /// Connections ask for batched frames (`/ws?batch=1`).
        var batch = false

        /// `/ws`, with the token when there is one and `batch=1` when asked for.
        var webSocketPath: String {
            var query: [String] = []
            if let token { query.append("token=" + (token.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? token)) }
            if batch { query.append("batch=1") }
            return query.isEmpty ? "/ws" : "/ws?" + query.joined(separator: "&")
        }

        var host: String { endpoints[0].host }
        var port: Int { endpoints[0].port }
    }

    let target: Target
    let group: MultiThreadedEventLoopGroup
    let loop: any EventLoop
    /// Subscribers offer permessage-deflate (events then arrive compressed; they are counted, not inflated).
    var deflate = false
    var subscribers: [BenchConnection] = []
    var received: [Int] = []
    var totalReceived = 0
    var acks = 0
    var sent = 0
    var errors = 0
    var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)

    init(target: Target) {
        self.target = target
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.loop = group.next()
    }

    func shutdown() async {
        try? await group.shutdownGracefully()
    }

    var stats: ProcessStats? { target.pids.isEmpty ? nil : ProcessStats(pids: target.pids) }

    // MARK: setup

    /// The i-th of `count` topics: the target topic itself when there is one.
    func topicName(_ index: Int, of count: Int) -> String {
        count <= 1 ? target.topic : "\(target.topic)-\(index)"
    }

    /// `POST /api/topics` for each topic of the run; 201 and 409 are both fine.
    func createTopics(_ count: Int) async throws {
        for index in 0..<max(1, count) { try await createTopic(topicName(index, of: count)) }
    }

    func createTopic() async throws {
        try await createTopic(target.topic)
    }

    func createTopic(_ name: String) async throws {
        let body = "{\"name\":\"\(name)\"}"
        let authorization = target.token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        let request = "POST /api/topics HTTP/1.1\r\nHost: \(target.host)\r\nContent-Type: application/json\r\n\(authorization)"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        let response = try await rawHTTP(request)
        guard response.hasPrefix("HTTP/1.1 201") || response.hasPrefix("HTTP/1.1 409") else {
            throw BenchError("creating topic '\(name)': \(response.prefix(80))")
        }
    }

    private func rawHTTP(_ request: String) async throws -> String {
        final class Collector: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            var text = ""
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                text += String(buffer: unwrapInboundIn(data))
            }
        }
        let collector = Collector()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: target.host, port: target.port).get()
        try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        try await channel.closeFuture.get()
        return try await channel.eventLoop.submit { collector.text }.get()
    }

    /// Opens `count` subscriber connections, each subscribed and acknowledged; `record` parses
    /// a timestamp from every event (latency runs), otherwise events are only counted.
    func connectSubscribers(
        _ count: Int, record: Set<Int> = [], localAddresses: [String] = [], topics: Int = 1, stalled: Bool = false,
        progress: Progress? = nil
    ) async throws {
        received = Array(repeating: 0, count: count)
        for index in 0..<count {
            let topic = topicName(index % max(1, topics), of: topics)
            let local = localAddresses.isEmpty ? nil : localAddresses[index % localAddresses.count]
            let endpoint = target.endpoints[index % target.endpoints.count]
            let connection = try await BenchConnection.connect(
                group: group, host: endpoint.host, port: endpoint.port, path: target.webSocketPath, localAddress: local, deflate: deflate,
                batched: target.batch
            )
            let acked = loop.makePromise(of: Void.self)
            let measure = record.contains(index)
            try await loop.submit {
                var subscribed = false
                connection.onText = { [unowned self] frame in
                    if subscribed {
                        self.received[index] += 1
                        self.totalReceived += 1
                        if measure, let t0 = frame.timestamp() {
                            let now = monotonicNanos()
                            _ = self.latency.record(now > t0 ? now - t0 : 0)
                        }
                    } else if frame.hasPrefix("{\"type\":\"ack\"") {
                        subscribed = true
                        acked.succeed(())
                        // A stalled subscriber stops reading: the server sees a consumer that never keeps up.
                        if stalled { connection.channel?.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in } }
                    } else if frame.hasPrefix("{\"type\":\"error\"") {
                        acked.fail(BenchError("subscribe refused: \(String(buffer: frame))"))
                    }
                }
                connection.write(BenchConnection.textFrame("{\"type\":\"subscribe\",\"topic\":\"\(topic)\"}"))
                self.subscribers.append(connection)
            }.get()
            try await acked.futureResult.get()
            progress?.update("connected \(index + 1)/\(count)")
        }
    }

    /// The slowest subscriber's count (event loop only).
    var minReceived: Int { received.min() ?? 0 }

    /// A publish frame whose message JSON is `payload` bytes: `{"t0":"<19 digits>","pad":"xx…"}`.
    func publishFrame(t0: UInt64, payload: Int, ack: Bool, topic: String? = nil) -> ByteBuffer {
        var frame = ByteBuffer()
        BenchConnection.appendTextFrame(publishText(t0: t0, payload: payload, ack: ack, topic: topic ?? target.topic), to: &frame)
        return frame
    }

    func publishText(t0: UInt64, payload: Int, ack: Bool, topic: String) -> String {
        let stamp = String(t0)
        let digits = String(repeating: "0", count: max(0, 19 - stamp.count)) + stamp
        let fixed = "{\"t0\":\"\(digits)\",\"pad\":\"\"}".utf8.count
        let message = "{\"t0\":\"\(digits)\",\"pad\":\"\(String(repeating: "x", count: max(0, payload - fixed)))\"}"
        return "{\"type\":\"publish\",\"topic\":\"\(topic)\",\"message\":\(message)\(ack ? "" : ",\"ack\":false")}"
    }
}

/// A one-line live status on a terminal (nothing when stderr is not a terminal).
final class Progress: @unchecked Sendable {
    private let enabled = isatty(STDERR_FILENO) == 1
    private var last: UInt64 = 0

    func update(_ text: @autoclosure () -> String, force: Bool = false) {
        guard enabled else { return }
        let now = monotonicNanos()
        guard force || now - last > 200_000_000 else { return }
        last = now
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(text())".utf8))
    }

    func done() {
        if enabled { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
    }
}

/// Prints the summary table and one JSON line with every figure.
func report(_ title: String, _ rows: [(String, String)], json: [String: Any]) {
    let width = rows.map(\.0.count).max() ?? 0
    print(title)
    for (name, value) in rows {
        print("  " + name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
    }
    if let data = try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}
