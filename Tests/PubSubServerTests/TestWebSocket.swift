import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PubSubProtocol

/// A deliberately small WebSocket client for tests, written on raw TCP so a test controls
/// everything: it can send binary or malformed frames, stop reading (a slow consumer), and it
/// never answers pings by itself unless asked to.
final class TestWebSocket: @unchecked Sendable {
    /// How long a test waits for a frame it expects before it fails: only a bound for a test that
    /// is stuck. Under the sanitizers, with the whole suite and its server children on two cores,
    /// a subscribe's ack took more than 5 s (ClusterTests, a node behind a proxy). A test that
    /// checks that nothing comes sends a ping and waits for the pong, never for a timeout.
    static let patience: Double = 15

    struct Frame: Sendable {
        let opcode: UInt8
        let data: [UInt8]
        /// RSV1: a permessage-deflate compressed message.
        var compressed = false
        var text: String { String(decoding: data, as: UTF8.self) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(data))) as? [String: Any] ?? [:] }
        /// Close code of a close frame.
        var closeCode: Int? { opcode == 0x8 && data.count >= 2 ? Int(data[0]) << 8 | Int(data[1]) : nil }
    }

    let channel: any Channel
    private let inbox: Inbox

    final class Inbox: @unchecked Sendable {
        let lock = NIOLock()
        var frames: [Frame] = []
        var closed = false
        var handshake: EventLoopPromise<Void>?
        var responseHead = ""
    }

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    static func connect(
        port: Int, path: String = "/ws", answerPings: Bool = true, host: String = "127.0.0.1", extraHeaders: String = "",
        from localAddress: String? = nil, tls: NIOSSLContext? = nil
    ) async throws -> TestWebSocket {
        let inbox = Inbox()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let localAddress { bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: localAddress, port: 0)) }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                    try channel.pipeline.syncOperations.addHandler(ClientHandler(inbox: inbox, answerPings: answerPings))
                }
            }
            .connect(host: host, port: port).get()
        let promise = channel.eventLoop.makePromise(of: Void.self)
        inbox.lock.withLock { inbox.handshake = promise }
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\(extraHeaders)\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        try await promise.futureResult.get()
        return TestWebSocket(channel: channel, inbox: inbox)
    }

    // MARK: sending

    func send(_ text: String) async throws {
        try await sendFrame(opcode: 0x1, payload: Array(text.utf8))
    }

    func send(json object: [String: Any]) async throws {
        let data = try JSONSerialization.data(withJSONObject: object)
        try await sendFrame(opcode: 0x1, payload: Array(data))
    }

    /// A client frame masked with `maskKey` (0 by default, which RFC 6455 allows; browsers use
    /// random keys), or unmasked when `maskKey` is nil (a protocol violation, for tests).
    func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv1: Bool = false, maskKey: UInt32? = 0) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: Self.frameBytes(opcode: opcode, payload: payload, fin: fin, rsv1: rsv1, maskKey: maskKey))).get()
    }

    /// Several frames in one TCP write (so the server reads them together).
    func sendFrames(_ frames: [[UInt8]]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: frames.flatMap { $0 })).get()
    }

    static func frameBytes(opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv1: Bool = false, maskKey: UInt32? = 0) -> [UInt8] {
        var buffer = ByteBuffer()
        WebSocketFraming.writeClientFrame(opcode: opcode, payload: payload, fin: fin, rsv1: rsv1, maskKey: maskKey, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    func sendClose(code: UInt16 = 1000) async throws {
        try await sendFrame(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)])
    }

    // MARK: receiving

    /// Next frame of any kind, or throws after `timeout`.
    /// (The inbox is looked at once more after the deadline: a test task that was not scheduled
    /// for a while, as on a loaded machine or under a sanitizer, still finds what came meanwhile.)
    func nextFrame(timeout: Double = TestWebSocket.patience) async throws -> Frame {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let frame: Frame? = inbox.lock.withLock { inbox.frames.isEmpty ? nil : inbox.frames.removeFirst() }
            if let frame { return frame }
            if inbox.lock.withLock({ inbox.closed }) { throw TestError("connection closed") }
            guard Date() < deadline else { throw TestError("no frame within \(timeout) s") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Next text frame as JSON, skipping pings and pongs.
    func next(timeout: Double = TestWebSocket.patience) async throws -> [String: Any] {
        while true {
            let frame = try await nextFrame(timeout: timeout)
            if frame.opcode == 0x9 || frame.opcode == 0xA { continue }
            guard frame.opcode == 0x1 else { throw TestError("expected a text frame, got opcode \(frame.opcode)") }
            return frame.json
        }
    }

    /// Next JSON frame whose `type` is `type`, skipping others (e.g. events while waiting for an ack).
    func next(type: String, timeout: Double = TestWebSocket.patience) async throws -> [String: Any] {
        while true {
            let json = try await next(timeout: timeout)
            if json["type"] as? String == type { return json }
        }
    }

    /// Reads every frame up to the server's close frame; returns the code of the last `error`
    /// frame before it and the close code. Throws if no close frame comes within `timeout` of
    /// the frame before it.
    func readToClose(timeout: Double = 10) async throws -> (lastError: String?, closeCode: Int?) {
        var lastError: String?
        while true {
            let frame = try await nextFrame(timeout: timeout)
            if frame.opcode == 0x8 { return (lastError, frame.closeCode) }
            if frame.opcode == 0x1, let error = frame.json["error"] as? [String: Any] { lastError = error["code"] as? String }
        }
    }

    /// Waits until the server closes the connection; returns the close frame's code if one came.
    /// 30 s by default: only a bound for a busy machine (sanitized suites on two cores took
    /// more than 10 s for closes that come within 2 s when idle).
    func waitForClose(timeout: Double = 30) async throws -> Int? {
        let deadline = Date().addingTimeInterval(timeout)
        var code: Int?
        while true {
            let frame: Frame? = inbox.lock.withLock { inbox.frames.isEmpty ? nil : inbox.frames.removeFirst() }
            if let frame {
                if let c = frame.closeCode { code = c }
                continue
            }
            if inbox.lock.withLock({ inbox.closed }) { return code }
            guard Date() < deadline else { throw TestError("connection still open after \(timeout) s") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    var isClosed: Bool { inbox.lock.withLock { inbox.closed } }

    /// The server's 101 response head.
    var responseHead: String { inbox.lock.withLock { inbox.responseHead } }

    func pauseReading() async throws {
        try await channel.setOption(ChannelOptions.autoRead, value: false).get()
    }

    func resumeReading() async throws {
        try await channel.setOption(ChannelOptions.autoRead, value: true).get()
        channel.read()
    }

    func close() async {
        try? await channel.close().get()
    }

    // MARK: the channel handler

    private final class ClientHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let inbox: Inbox
        let answerPings: Bool
        var buffer = ByteBuffer()
        var upgraded = false

        init(inbox: Inbox, answerPings: Bool) {
            self.inbox = inbox
            self.answerPings = answerPings
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            buffer.writeBuffer(&incoming)
            if !upgraded {
                let view = buffer.readableBytesView
                guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
                let head = buffer.readString(length: end.upperBound - view.startIndex) ?? ""
                upgraded = true
                let promise = inbox.lock.withLock {
                    inbox.responseHead = head
                    return inbox.handshake
                }
                if head.hasPrefix("HTTP/1.1 101") {
                    promise?.succeed(())
                } else {
                    promise?.fail(TestError("upgrade refused: \(head.prefix(40))"))
                }
            }
            while let frame = parseFrame() {
                if frame.opcode == 0x9 && answerPings {
                    var pong = ByteBuffer()
                    pong.writeInteger(UInt8(0x8A))
                    pong.writeInteger(UInt8(0x80 | frame.data.count))
                    pong.writeInteger(UInt32(0))
                    pong.writeBytes(frame.data)
                    context.writeAndFlush(NIOAny(pong), promise: nil)
                }
                inbox.lock.withLock { inbox.frames.append(frame) }
            }
        }

        func parseFrame() -> Frame? {
            guard buffer.readableBytes >= 2, let b0 = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                let b1 = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
            else { return nil }
            var length = Int(b1 & 0x7F)
            var offset = 2
            if length == 126 {
                guard let l = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) else { return nil }
                length = Int(l)
                offset = 4
            } else if length == 127 {
                guard let l = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt64.self) else { return nil }
                length = Int(l)
                offset = 10
            }
            guard buffer.readableBytes >= offset + length else { return nil }
            buffer.moveReaderIndex(forwardBy: offset)
            let data = buffer.readBytes(length: length) ?? []
            buffer.discardReadBytes()
            return Frame(opcode: b0 & 0x0F, data: data, compressed: b0 & 0x40 != 0)
        }

        func channelInactive(context: ChannelHandlerContext) {
            inbox.lock.withLock {
                inbox.closed = true
                inbox.handshake?.fail(TestError("closed during handshake"))
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
