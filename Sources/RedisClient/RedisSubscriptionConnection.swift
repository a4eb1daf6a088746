import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A connection in Redis's pub/sub mode: it subscribes to channels and is pushed their
/// messages, which `onMessage` receives on the connection's event loop, in the order Redis
/// published them. Commands answered with a confirmation per channel (`SUBSCRIBE`,
/// `UNSUBSCRIBE`) complete once every confirmation is in.
///
///     let subscriber = try await RedisSubscriptionConnection.connect(to: url, on: group) { channel, payload in … }.get()
///     try await subscriber.subscribe(["pubsub.node.1"]).get()
public final class RedisSubscriptionConnection: Sendable {
    public let channel: any Channel

    public var eventLoop: any EventLoop { channel.eventLoop }
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Connects, logs in and selects the database the URL names, then waits for subscriptions.
    public static func connect(
        to url: RedisURL, on group: any EventLoopGroup, timeout: TimeAmount = .seconds(1),
        onMessage: @escaping @Sendable (_ channel: ByteBuffer, _ payload: ByteBuffer) -> Void,
        onPatternMessage: (@Sendable (_ channel: ByteBuffer, _ payload: ByteBuffer) -> Void)? = nil
    ) -> EventLoopFuture<RedisSubscriptionConnection> {
        RESPChannel.open(
            to: url, on: group, timeout: timeout,
            handler: RedisSubscriptionHandler(onMessage: onMessage, onPatternMessage: onPatternMessage ?? onMessage),
            wrap: { RedisSubscriptionConnection(channel: $0) }, send: { connection, command in connection.send(command, replies: 1) }
        )
    }

    /// Subscribes to `channels`; completes when Redis has confirmed each.
    public func subscribe(_ channels: [String]) -> EventLoopFuture<Void> { confirmedEach("SUBSCRIBE", channels) }

    /// Unsubscribes from `channels`; completes when Redis has confirmed each.
    public func unsubscribe(_ channels: [String]) -> EventLoopFuture<Void> { confirmedEach("UNSUBSCRIBE", channels) }

    /// Subscribes to the channels matching each glob pattern (`PSUBSCRIBE`); their messages
    /// go to `onPatternMessage`. Completes when Redis has confirmed each.
    public func psubscribe(_ patterns: [String]) -> EventLoopFuture<Void> { confirmedEach("PSUBSCRIBE", patterns) }

    /// Undoes ``psubscribe(_:)``; completes when Redis has confirmed each.
    public func punsubscribe(_ patterns: [String]) -> EventLoopFuture<Void> { confirmedEach("PUNSUBSCRIBE", patterns) }

    /// A command over `names` that Redis confirms once per name.
    private func confirmedEach(_ command: String, _ names: [String]) -> EventLoopFuture<Void> {
        guard !names.isEmpty else { return eventLoop.makeSucceededVoidFuture() }
        return send([.string(command)] + names.map { .string($0) }, replies: names.count)
    }

    /// Checks that the connection is alive (in pub/sub mode Redis answers `pong` as a push).
    public func ping() -> EventLoopFuture<Void> {
        send(["PING"], replies: 1)
    }

    public func close() -> EventLoopFuture<Void> {
        channel.close().flatMapErrorThrowing { error in
            if let error = error as? ChannelError, error == .alreadyClosed { return }
            throw error
        }
    }

    private func send(_ arguments: [RESPArgument], replies: Int) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        var buffer = channel.allocator.buffer(capacity: 64)
        buffer.writeRESPCommand(arguments)
        channel.writeAndFlush(RedisSubscriptionHandler.Request(bytes: buffer, replies: replies, promise: promise)).whenFailure { _ in
            promise.fail(RESPError.connectionClosed)
        }
        return promise.futureResult
    }
}

/// Sorts what a pub/sub connection receives: pushed messages go to `onMessage`; confirmations
/// and replies complete the commands that asked for them, first in, first out.
final class RedisSubscriptionHandler: ChannelDuplexHandler, Sendable {
    typealias InboundIn = RESPValue
    typealias OutboundIn = Request
    typealias OutboundOut = ByteBuffer

    struct Request {
        let bytes: ByteBuffer
        /// How many replies (confirmations) answer it.
        let replies: Int
        let promise: EventLoopPromise<Void>
    }

    private struct Waiting {
        var replies: Int
        let promise: EventLoopPromise<Void>
    }

    private let onMessage: @Sendable (ByteBuffer, ByteBuffer) -> Void
    private let onPatternMessage: @Sendable (ByteBuffer, ByteBuffer) -> Void
    /// Event-loop confined (behind a lock only so the handler is Sendable for the bootstrap).
    private let waiting = NIOLockedValueBox(CircularBuffer<Waiting>())

    init(onMessage: @escaping @Sendable (ByteBuffer, ByteBuffer) -> Void, onPatternMessage: @escaping @Sendable (ByteBuffer, ByteBuffer) -> Void) {
        self.onMessage = onMessage
        self.onPatternMessage = onPatternMessage
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        waiting.withLockedValue { $0.append(Waiting(replies: request.replies, promise: request.promise)) }
        context.write(wrapOutboundOut(request.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if case .array(let parts?) = value, let kind = parts.first?.string {
            switch kind {
            case "message":
                if parts.count == 3, case .bulkString(let channel?) = parts[1], case .bulkString(let payload?) = parts[2] {
                    onMessage(channel, payload)
                }
                return
            case "pmessage":
                if parts.count == 4, case .bulkString(let channel?) = parts[2], case .bulkString(let payload?) = parts[3] {
                    onPatternMessage(channel, payload)
                }
                return
            default:
                break  // a confirmation (subscribe, unsubscribe, pong): answers the oldest command
            }
        }
        let error: RESPError? = if case .error(let message) = value { .server(message) } else { nil }
        let completed: EventLoopPromise<Void>?? = waiting.withLockedValue { waiting in
            guard !waiting.isEmpty else { return nil }
            if error != nil { return waiting.removeFirst().promise }
            waiting[waiting.startIndex].replies -= 1
            return waiting[waiting.startIndex].replies == 0 ? waiting.removeFirst().promise : .some(nil)
        }
        switch completed {
        case .none:
            context.fireErrorCaught(RESPError.malformed("a reply with no command waiting for it"))
        case .some(.none):
            break  // more confirmations to come for this command
        case .some(.some(let promise)):
            if let error { promise.fail(error) } else { promise.succeed() }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error as? RESPError ?? .connectionClosed)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(.connectionClosed)
        context.fireChannelInactive()
    }

    private func failAll(_ error: RESPError) {
        let pending = waiting.withLockedValue { waiting in
            defer { waiting.removeAll() }
            return waiting.map(\.promise)
        }
        for promise in pending { promise.fail(error) }
    }
}
