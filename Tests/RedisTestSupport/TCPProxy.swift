import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A TCP relay on a free port of 127.0.0.1 to a port of 127.0.0.1: what one client sees of a
/// server behind a network that can be cut. ``cut()`` closes every relayed connection and
/// refuses new ones (as a partition would, for this client only) until ``restore()``.
public final class TCPProxy: Sendable {
    public let port: Int
    private let target: Int
    private let listener: any Channel
    private let state = NIOLockedValueBox(State())

    private struct State {
        var cut = false
        var channels: [any Channel] = []
    }

    public init(to target: Int) async throws {
        self.target = target
        let box = NIOLockedValueBox<TCPProxy?>(nil)
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                guard let proxy = box.withLockedValue({ $0 }) else { return inbound.close() }
                return proxy.relay(inbound)
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.listener = listener
        self.port = listener.localAddress?.port ?? 0
        box.withLockedValue { $0 = self }
    }

    public var url: String { "redis://127.0.0.1:\(port)" }

    /// Closes every relayed connection; new ones are closed as they come.
    public func cut() {
        let channels = state.withLockedValue { state in
            state.cut = true
            defer { state.channels = [] }
            return state.channels
        }
        for channel in channels { channel.close(promise: nil) }
    }

    public func restore() {
        state.withLockedValue { $0.cut = false }
    }

    public func close() async {
        cut()
        try? await listener.close()
    }

    /// Sets `inbound` up to be relayed once it is active (a read asked for before that is lost).
    private func relay(_ inbound: any Channel) -> EventLoopFuture<Void> {
        inbound.eventLoop.makeCompletedFuture {
            try inbound.pipeline.syncOperations.addHandler(Starter(proxy: self))
        }
    }

    /// Connects `inbound` (active) to the target and starts both ways.
    fileprivate func connect(_ inbound: any Channel) {
        if state.withLockedValue({ $0.cut }) {
            inbound.close(promise: nil)
            return
        }
        ClientBootstrap(group: inbound.eventLoop)
            .channelOption(.autoRead, value: false)
            .channelInitializer { outbound in
                outbound.eventLoop.makeCompletedFuture {
                    try outbound.pipeline.syncOperations.addHandler(Forward(to: inbound))
                }
            }
            .connect(host: "127.0.0.1", port: target)
            .whenComplete { result in
                guard case .success(let outbound) = result else {
                    inbound.close(promise: nil)
                    return
                }
                let accepted = self.state.withLockedValue { state -> Bool in
                    guard !state.cut else { return false }
                    state.channels += [inbound, outbound]
                    return true
                }
                guard accepted else {
                    outbound.close(promise: nil)
                    inbound.close(promise: nil)
                    return
                }
                inbound.pipeline.addHandler(Forward(to: outbound)).whenSuccess {
                    inbound.read()
                    outbound.read()
                }
            }
    }
}

/// Starts the relay of an accepted connection once it is active.
private final class Starter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let proxy: TCPProxy

    init(proxy: TCPProxy) { self.proxy = proxy }

    func channelActive(context: ChannelHandlerContext) {
        proxy.connect(context.channel)
        context.fireChannelActive()
    }
}

/// Writes what one side reads to the other, reading on once it is written; either side's
/// end closes both.
private final class Forward: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let peer: any Channel

    init(to peer: any Channel) { self.peer = peer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        let channel = context.channel
        peer.writeAndFlush(bytes).whenComplete { result in
            if case .failure = result { channel.close(promise: nil) } else { channel.read() }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
