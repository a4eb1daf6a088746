import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PubSubProtocol

/// A WebSocket client that writes and never reads: a slow or malicious consumer. It sends its
/// frames over and over until `seconds` have passed, and whenever the server closes it, it
/// connects again and goes on, so the abuse lasts the whole time.
struct Abuser: Sendable {
    var port: Int
    var path = "/ws"
    /// Frames sent once after each upgrade (a subscribe, say).
    var setup: [UInt8] = []
    /// Frames sent over and over.
    var payload: [UInt8]
    /// Between two writes of `payload`.
    var pause: Duration = .milliseconds(10)

    struct Report {
        var connections = 0
        var bytesSent = 0
    }

    /// Client frames (masked, text unless `opcode` says otherwise), one after another.
    static func frames(_ texts: [String], opcode: UInt8 = 0x1) -> [UInt8] {
        var buffer = ByteBuffer()
        for text in texts { WebSocketFraming.writeClientFrame(opcode: opcode, payload: Array(text.utf8), maskKey: 0x1234_5678, to: &buffer) }
        return Array(buffer.readableBytesView)
    }

    func run(seconds: Double) async -> Report {
        var report = Report()
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            guard let channel = try? await connect() else {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            report.connections += 1
            do {
                if !setup.isEmpty { try await channel.writeAndFlush(ByteBuffer(bytes: setup)).get() }
                let bytes = ByteBuffer(bytes: payload)
                while Date() < deadline {
                    // Nothing to send: it only sits there, subscribed and not reading.
                    guard bytes.readableBytes > 0 else {
                        try await Task.sleep(for: pause)
                        continue
                    }
                    try await channel.writeAndFlush(bytes).get()
                    report.bytesSent += bytes.readableBytes
                    try await Task.sleep(for: pause)
                }
            } catch {
                // Closed by the server (or its socket reset): connect again.
            }
            try? await channel.close().get()
        }
        return report
    }

    /// Upgrades, then stops reading: whatever the server sends stays in the socket.
    private func connect() async throws -> any Channel {
        let handshake = NIOLockedValueBox<EventLoopPromise<Void>?>(nil)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(HandshakeReader(handshake: handshake))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let promise = channel.eventLoop.makePromise(of: Void.self)
        handshake.withLockedValue { $0 = promise }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        do {
            try await channel.writeAndFlush(ByteBuffer(string: request)).get()
            try await promise.futureResult.get()
        } catch {
            try? await channel.close().get()
            throw error
        }
        return channel
    }

    private final class HandshakeReader: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let handshake: NIOLockedValueBox<EventLoopPromise<Void>?>
        var head: [UInt8] = []

        init(handshake: NIOLockedValueBox<EventLoopPromise<Void>?>) {
            self.handshake = handshake
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let promise = handshake.withLockedValue({ $0 }) else { return }
            head += unwrapInboundIn(data).readableBytesView
            guard let end = head.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            handshake.withLockedValue { $0 = nil }
            guard String(decoding: head[..<end.lowerBound], as: UTF8.self).hasPrefix("HTTP/1.1 101") else {
                promise.fail(TestError("upgrade refused"))
                return
            }
            // From here on nothing is read.
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            promise.succeed(())
        }

        func channelInactive(context: ChannelHandlerContext) {
            handshake.withLockedValue { $0 }?.fail(TestError("closed during the handshake"))
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
