import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP connection that sends exactly the bytes a test gives it and keeps what comes back:
/// for half-sent requests, kept-alive connections and handshakes written by hand.
final class RawConnection: Sendable {
    let channel: any Channel
    private let received: Received

    private final class Received: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let state = NIOLockedValueBox<(bytes: [UInt8], closed: Bool)>(([], false))

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let chunk = Array(unwrapInboundIn(data).readableBytesView)
            state.withLockedValue { $0.bytes += chunk }
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.withLockedValue { $0.closed = true }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    private init(channel: any Channel, received: Received) {
        self.channel = channel
        self.received = received
    }

    static func connect(port: Int) async throws -> RawConnection {
        let received = Received()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(received) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text)).get()
    }

    var isClosed: Bool { received.state.withLockedValue { $0.closed } }
    var text: String { String(decoding: received.state.withLockedValue { $0.bytes }, as: UTF8.self) }

    /// Waits until the server closes the connection; false if it is still open after `timeout`.
    func waitForClose(timeout: Double) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if isClosed { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return isClosed
    }

    /// Waits for a whole HTTP response (head and `Content-Length` body) and returns it parsed.
    func response(timeout: Double = TestWebSocket.patience) async throws -> TestHTTP.Response {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            // One snapshot of both: bytes read before a separate look at `closed` could miss a
            // body that arrived just before the close.
            let (bytes, closed) = received.state.withLockedValue { ($0.bytes, $0.closed) }
            if let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) {
                let response = try TestHTTP.parse(bytes)
                let length = Int(response.headers["content-length"] ?? "0") ?? 0
                if bytes.count - end.upperBound >= length { return response }
            }
            if closed { return try TestHTTP.parse(bytes) }
            // Looked at once more after the deadline, for a task that was not scheduled meanwhile.
            guard Date() < deadline else { throw TestError("no whole response within \(timeout) s: \(text)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func close() async {
        try? await channel.close().get()
    }
}
