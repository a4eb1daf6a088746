import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One connection to a Redis server, pipelined: commands are written as they are sent, without
/// waiting for earlier answers, and each answer completes its command's future, in order.
///
///     let connection = try await RedisConnection.connect(to: RedisURL("redis://127.0.0.1:6379"), on: group).get()
///     let pong = try await connection.send(["PING"]).get()   // .simpleString("PONG")
///
/// Log-in (`AUTH`) and database (`SELECT`) are taken from the URL when it connects. An error
/// reply is a value (`.error`), not a failure: `command(_:)` turns it into one. When the
/// connection closes, every unanswered command fails with `RESPError.connectionClosed`.
public final class RedisConnection: Sendable {
    public let channel: any Channel
    private let handler: RedisCommandHandler

    public var eventLoop: any EventLoop { channel.eventLoop }
    /// Completes when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }
    public var isActive: Bool { channel.isActive }

    private init(channel: any Channel, handler: RedisCommandHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects, then logs in and selects the database the URL names. `timeout` bounds the
    /// TCP connect.
    public static func connect(
        to url: RedisURL, on group: any EventLoopGroup, timeout: TimeAmount = .seconds(1)
    ) -> EventLoopFuture<RedisConnection> {
        let handler = RedisCommandHandler()
        return RESPChannel.open(
            to: url, on: group, timeout: timeout, handler: handler, wrap: { RedisConnection(channel: $0, handler: handler) },
            send: { connection, command in connection.command(command).map { _ in } }
        )
    }

    /// Sends one command; its future brings the answer (an error reply included).
    public func send(_ arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        var buffer = channel.allocator.buffer(capacity: 64)
        buffer.writeRESPCommand(arguments)
        // A write that fails never reached the handler's queue (the connection has closed): the
        // command fails here. (A promise completes once; a second completion is ignored.)
        channel.writeAndFlush(RedisCommandHandler.Request(bytes: buffer, promise: promise)).whenFailure { _ in
            promise.fail(RESPError.connectionClosed)
        }
        return promise.futureResult
    }

    /// Sends one command; an error reply fails the future with `RESPError.server`.
    public func command(_ arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        send(arguments).flatMapThrowing { value in
            if case .error(let message) = value { throw RESPError.server(message) }
            return value
        }
    }

    public func close() -> EventLoopFuture<Void> {
        channel.close().flatMapErrorThrowing { error in
            if let error = error as? ChannelError, error == .alreadyClosed { return }
            throw error
        }
    }
}

/// Turns the socket's bytes into RESP values.
struct RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue
    let parser = RESPParser()

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let value = try parser.parse(&buffer) else { return .needMoreData }
        context.fireChannelRead(NIOAny(value))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Writes commands and completes their promises with the answers, first in, first out.
final class RedisCommandHandler: ChannelDuplexHandler, Sendable {
    typealias InboundIn = RESPValue
    typealias OutboundIn = Request
    typealias OutboundOut = ByteBuffer

    struct Request {
        let bytes: ByteBuffer
        let promise: EventLoopPromise<RESPValue>
    }

    /// Promises of the commands written and not yet answered; event-loop confined (behind a
    /// lock only so the handler can be Sendable for the bootstrap's initializer).
    private let waiting = NIOLockedValueBox(CircularBuffer<EventLoopPromise<RESPValue>>())

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        waiting.withLockedValue { $0.append(request.promise) }
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        guard let promise = waiting.withLockedValue({ $0.popFirst() }) else {
            // An answer nobody asked for: the stream is out of step.
            context.fireErrorCaught(RESPError.malformed("a reply with no command waiting for it"))
            context.close(promise: nil)
            return
        }
        promise.succeed(value)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset or a read error ends the connection like a close does; a malformed reply
        // says what it was.
        failAll(error as? RESPError ?? .connectionClosed)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RESPError.connectionClosed)
        context.fireChannelInactive()
    }

    private func failAll(_ error: any Error) {
        let pending = waiting.withLockedValue { waiting in
            defer { waiting.removeAll() }
            return Array(waiting)
        }
        for promise in pending { promise.fail(error) }
    }
}
