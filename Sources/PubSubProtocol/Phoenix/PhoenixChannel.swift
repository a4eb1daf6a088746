import NIOCore
import PubSubCore

/// Where the answer to one client command goes and how it is framed.
///
///     let address = ReplyAddress.native(requestID: "r1")
///     address.append(.pong, to: &replies)   // {"type":"pong","request_id":"r1",…} as a text frame
public enum ReplyAddress: Sendable {
    case native(requestID: String?)
    /// Boxed: every native publish carries an address through the session's batch, and a
    /// small one is copied for less.
    case phoenix(PhoenixReplyTo)

    public static func phoenix(_ version: PhoenixVersion, joinRef: ByteBuffer?, ref: ByteBuffer?, requestID: String?) -> ReplyAddress {
        .phoenix(PhoenixReplyTo(version: version, joinRef: joinRef, ref: ref, requestID: requestID))
    }

    /// Appends `message` as this address's reply frame (a whole WebSocket text frame) to `buffer`.
    public func append(_ message: ServerMessage, to buffer: inout ByteBuffer) {
        switch self {
        case .native(let requestID):
            NativeCodec.append(message, requestID: requestID, to: &buffer)
        case .phoenix(let to):
            PhoenixCodec.appendReply(to.version, joinRef: to.joinRef, ref: to.ref, message: message, requestID: to.requestID, to: &buffer)
        }
    }
}

/// The Phoenix request a reply answers: its channel's join_ref and its own ref (echoed as the
/// client sent them) and `request_id`.
public final class PhoenixReplyTo: Sendable {
    public let version: PhoenixVersion
    public let joinRef: ByteBuffer?
    public let ref: ByteBuffer?
    public let requestID: String?

    public init(version: PhoenixVersion, joinRef: ByteBuffer?, ref: ByteBuffer?, requestID: String?) {
        self.version = version
        self.joinRef = joinRef
        self.ref = ref
        self.requestID = requestID
    }
}

/// What one client text frame asks of its connection, once decoded.
///
///     switch channel.handle(request, now: WallClock.nowMillis()) {
///     case .command(let command, let address): … case .reply(let frames): … case .leaveAll(let frames): … }
public enum WireRequest: Sendable {
    /// Run the command; its answer (ack, pong, error) is framed by the address.
    case command(ClientCommand, ReplyAddress)
    /// Send these frames back as they are (decode errors, heartbeat replies, join replies, unknown events).
    case reply(ByteBuffer)
    /// Drop every subscription of the connection, then send these frames (Phoenix leave, and a join that replaces the channel).
    case leaveAll(then: ByteBuffer)
}

/// The rules of the one Phoenix channel, `pubsub`, and the `phoenix` heartbeat topic: which
/// request joins, leaves, or runs a command, and the frames that answer it. It holds no
/// connection and touches no socket; the session carries out what ``handle(_:now:)`` returns.
///
///     var channel = PhoenixChannel(version: .v2, clientID: "c1")
///     let answer = channel.handle(try PhoenixCodec.decode(text, version: .v2, limits: limits).get(), now: now)
public struct PhoenixChannel: Sendable {
    public let version: PhoenixVersion
    private let clientID: String
    public private(set) var isJoined = false
    /// The join's `join_ref` (or its `ref` when it had none), echoed by the channel's pushes.
    private var joinRef: ByteBuffer? {
        didSet { if version == .v2 { deliveryPrefix = PhoenixEventEncoder.deliveryPrefix(joinRef: joinRef) } }
    }
    /// Bytes written before each shared delivery body (2.0.0: `[join_ref,null,`); nil for
    /// 1.0.0, whose deliveries are whole shared frames. Updated on join and leave.
    public private(set) var deliveryPrefix: ByteBuffer?

    public init(version: PhoenixVersion, clientID: String) {
        self.version = version
        self.clientID = clientID
    }

    /// The channel's answer to one decoded request; `now` is the time for the join reply's `ts`.
    public mutating func handle(_ request: PhoenixRequest, now: Int64) -> WireRequest {
        let version = self.version
        func reply(status: StaticString, _ response: (inout JSONWriter) -> Void) -> ByteBuffer {
            PhoenixCodec.reply(version, joinRef: request.joinRef, ref: request.ref, topic: request.topic, status: status, response: response)
        }
        func unmatched() -> WireRequest {
            .reply(reply(status: "error") { $0.object { $0.key("reason"); $0.plainString("unmatched topic") } })
        }

        if request.topic == "phoenix" {
            guard request.event == "heartbeat" else { return unmatched() }
            return .reply(reply(status: "ok") { $0.object { _ in } })
        }
        guard request.topic == PhoenixCodec.channelTopic else { return unmatched() }

        switch request.event {
        case "phx_join":
            // A second join replaces the channel, as in Phoenix: the old one is closed first.
            let replaced = isJoined ? leave() : nil
            isJoined = true
            joinRef = request.joinRef ?? request.ref
            let clientID = self.clientID
            let joined = reply(status: "ok") { o in
                o.object { r in
                    r.key("type"); r.plainString("info")
                    r.key("message"); r.plainString("Connected successfully")
                    r.member("client_id", clientID)
                    r.key("ts"); r.timestamp(millis: now)
                }
            }
            guard var frames = replaced else { return .reply(joined) }
            frames.writeImmutableBuffer(joined)
            return .leaveAll(then: frames)
        case "phx_leave":
            guard isJoined else { return unmatched() }
            var frames = reply(status: "ok") { $0.object { _ in } }
            frames.writeImmutableBuffer(leave())
            return .leaveAll(then: frames)
        case _ where isJoined && request.command != nil:
            let address = ReplyAddress.phoenix(version, joinRef: joinRef, ref: request.ref, requestID: request.requestID)
            switch request.command! {
            case .success(let command):
                return .command(command, address)
            case .failure(let error):
                var frame = ByteBuffer()
                address.append(.error(error), to: &frame)
                return .reply(frame)
            }
        case _ where isJoined:
            return .reply(reply(status: "error") { $0.object { $0.key("reason"); $0.string("unknown event '\(request.event)'") } })
        default:
            return unmatched()
        }
    }

    /// Leaves the channel; returns the `phx_close` push (with the join_ref being left) that
    /// tells the client. The caller drops the subscriptions.
    private mutating func leave() -> ByteBuffer {
        let close = PhoenixCodec.push(version, joinRef: joinRef, topic: PhoenixCodec.channelTopic, event: "phx_close") { $0.object { _ in } }
        isJoined = false
        joinRef = nil
        return close
    }

    /// A server notice (topic deleted, drops, shutdown, slow consumer) as a push on the channel.
    public func notice(_ message: ServerMessage) -> ByteBuffer {
        PhoenixCodec.notice(version, joinRef: joinRef, message: message)
    }

    /// An error that answers no request (undecodable or binary frames): a phx_error push on `phoenix`.
    public static func unaddressedError(_ version: PhoenixVersion, _ error: PubSubError) -> ByteBuffer {
        PhoenixCodec.push(version, joinRef: nil, topic: "phoenix", event: "phx_error") { o in
            NativeCodec.write(.error(error), requestID: nil, into: &o)
        }
    }
}
