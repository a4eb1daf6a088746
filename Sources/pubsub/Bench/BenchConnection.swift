import Foundation
import NIOCore
import NIOPosix
import PubSubProtocol

/// A lean WebSocket client for load generation: raw TCP, its own handshake, frames parsed only
/// as far as needed (text payload handed to `onText`), client frames pre-built and masked with
/// the zero key (RFC 6455 allows any key). All callbacks run on the connection's event loop.
final class BenchConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var buffer = ByteBuffer()
    private var upgraded = false
    private var handshake: EventLoopPromise<Void>?
    /// Text frames are batches (`/ws?batch=1`): `onText` gets each line.
    private var batched = false
    var onText: (ByteBuffer) -> Void = { _ in }
    var onClose: () -> Void = {}
    private(set) var channel: (any Channel)?

    static func connect(
        group: any EventLoopGroup, host: String, port: Int, path: String, localAddress: String? = nil, deflate: Bool = false,
        batched: Bool = false
    ) async throws -> BenchConnection {
        let connection = BenchConnection()
        connection.batched = batched
        var bootstrap = ClientBootstrap(group: group)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(connection) }
            }
        if let localAddress {
            bootstrap = bootstrap.bind(to: try SocketAddress(ipAddress: localAddress, port: 0))
        }
        let channel = try await bootstrap.connect(host: host, port: port).get()
        let promise = channel.eventLoop.makePromise(of: Void.self)
        try await channel.eventLoop.submit {
            connection.channel = channel
            connection.handshake = promise
            let request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: cHVic3ViLWJlbmNoLWtleQ==\r\nSec-WebSocket-Version: 13\r\n"
                + (deflate ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "") + "\r\n"
            channel.writeAndFlush(ByteBuffer(string: request), promise: nil)
        }.get()
        try await promise.futureResult.get()
        return connection
    }

    /// A masked client text frame (zero mask key), ready to write any number of times.
    static func textFrame(_ text: String) -> ByteBuffer {
        var frame = ByteBuffer()
        appendTextFrame(text, to: &frame)
        return frame
    }

    static func appendTextFrame(_ text: String, to frame: inout ByteBuffer) {
        WebSocketFraming.writeClientFrame(opcode: 0x1, payload: text.utf8, to: &frame)
    }

    /// Event loop only.
    func write(_ bytes: ByteBuffer) {
        channel?.writeAndFlush(bytes, promise: nil)
    }

    func close() {
        channel?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer.readableBytes == 0 {
            buffer = incoming
        } else {
            buffer.writeBuffer(&incoming)
        }
        if !upgraded {
            let view = buffer.readableBytesView
            guard let end = view.firstRange(of: [13, 10, 13, 10]) else { return }
            let head = buffer.readString(length: end.upperBound - view.startIndex) ?? ""
            upgraded = true
            if head.hasPrefix("HTTP/1.1 101") {
                handshake?.succeed(())
            } else {
                handshake?.fail(BenchError("WebSocket upgrade refused: \(head.prefix(60))"))
            }
        }
        while buffer.readableBytes >= 2 {
            let start = buffer.readerIndex
            let first = buffer.getInteger(at: start, as: UInt8.self)!
            var length = Int(buffer.getInteger(at: start + 1, as: UInt8.self)! & 0x7F)
            var offset = 2
            if length == 126 {
                guard buffer.readableBytes >= 4 else { break }
                length = Int(buffer.getInteger(at: start + 2, as: UInt16.self)!)
                offset = 4
            } else if length == 127 {
                guard buffer.readableBytes >= 10 else { break }
                length = Int(buffer.getInteger(at: start + 2, as: UInt64.self)!)
                offset = 10
            }
            guard buffer.readableBytes >= offset + length else { break }
            let payload = buffer.getSlice(at: start + offset, length: length)!
            buffer.moveReaderIndex(forwardBy: offset + length)
            switch first & 0x0F {
            case 0x1 where batched:
                BatchedFrames.forEachLine(payload) { line in
                    onText(line)
                    return true
                }
            case 0x1: onText(payload)
            case 0x9:  // answer pings so long runs are not closed as idle
                var pong = ByteBuffer()
                pong.writeInteger(UInt8(0x8A))
                pong.writeInteger(UInt8(0x80 | min(length, 125)))
                pong.writeInteger(UInt32(0))
                pong.writeImmutableBuffer(payload)
                context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
            default: break
            }
        }
        if buffer.readableBytes == 0 { buffer.clear() } else { buffer.discardReadBytes() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshake?.fail(BenchError("connection closed during the handshake"))
        handshake = nil
        onClose()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension ByteBuffer {
    /// Whether the readable bytes start with `prefix` (cheap frame classification).
    func hasPrefix(_ prefix: StaticString) -> Bool {
        guard readableBytes >= prefix.utf8CodeUnitCount else { return false }
        return withUnsafeReadableBytes { bytes in
            memcmp(bytes.baseAddress!, prefix.utf8Start, prefix.utf8CodeUnitCount) == 0
        }
    }

    /// The 19-digit number after `"t0":"` in a frame, if any.
    func timestamp() -> UInt64? {
        withUnsafeReadableBytes { bytes -> UInt64? in
            let key: [UInt8] = Array("\"t0\":\"".utf8)
            guard bytes.count > key.count else { return nil }
            var i = 0
            while i + key.count + 19 <= bytes.count {
                if bytes[i] == key[0] && memcmp(bytes.baseAddress! + i, key, key.count) == 0 {
                    var value: UInt64 = 0
                    for j in 0..<19 {
                        let digit = bytes[i + key.count + j]
                        guard digit >= 48 && digit <= 57 else { return nil }
                        value = value * 10 + UInt64(digit - 48)
                    }
                    return value
                }
                i += 1
            }
            return nil
        }
    }
}
