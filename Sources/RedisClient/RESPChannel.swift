import NIOCore
import NIOPosix

/// What every connection to Redis does first, whatever it is for: the TCP connection with the
/// RESP decoder and its handler, then `AUTH` and `SELECT` as the URL asks. A connection whose
/// log-in fails is closed.
enum RESPChannel {
    static func open<Connection: Sendable>(
        to url: RedisURL, on group: any EventLoopGroup, timeout: TimeAmount, handler: some ChannelHandler & Sendable,
        wrap: @escaping @Sendable (any Channel) -> Connection,
        send: @escaping @Sendable (Connection, [RESPArgument]) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<Connection> {
        ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: url.host, port: url.port)
            .flatMap { channel in
                let connection = wrap(channel)
                return EventLoopFuture.andAllSucceed(url.loginCommands.map { send(connection, $0) }, on: channel.eventLoop)
                    .map { connection }
                    .flatMapErrorThrowing { error in
                        channel.close(promise: nil)
                        throw error
                    }
            }
    }
}

extension RedisURL {
    /// `AUTH` with the URL's credentials and `SELECT` of its database, when it names them.
    var loginCommands: [[RESPArgument]] {
        var commands: [[RESPArgument]] = []
        if let password { commands.append(user.map { ["AUTH", .string($0), .string(password)] } ?? ["AUTH", .string(password)]) }
        if database != 0 { commands.append(["SELECT", .integer(Int64(database))]) }
        return commands
    }
}
