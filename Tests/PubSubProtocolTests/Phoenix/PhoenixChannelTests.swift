import NIOCore
import Testing

@testable import PubSubCore
@testable import PubSubProtocol

/// The Phoenix channel's rules as a state machine: the exact frames it answers with, on both
/// serializers, through join, rejoin and leave.
@Suite("Phoenix channel")
struct PhoenixChannelTests {
    static let now: Int64 = 951_782_400_999  // 2000-02-29T00:00:00.999Z

    /// A request as the client's text `frame` decodes.
    static func request(_ frame: String, _ version: PhoenixVersion) throws -> PhoenixRequest {
        try PhoenixCodec.decode(ByteBuffer(string: frame), version: version, limits: DecodingLimits()).get()
    }

    /// The payloads of the whole, unmasked text frames in `frames`, in order.
    static func texts(_ frames: ByteBuffer) -> [String] {
        var frames = frames
        var texts: [String] = []
        while frames.readableBytes > 0 {
            let first = frames.readInteger(as: UInt8.self)!
            precondition(first == WebSocketFraming.text)
            var length = Int(frames.readInteger(as: UInt8.self)!)
            precondition(length < 127)  // no frame here is 64 KB
            if length == 126 { length = Int(frames.readInteger(as: UInt16.self)!) }
            texts.append(frames.readString(length: length)!)
        }
        return texts
    }

    /// Every `"ts":"…"` spelled `"ts":"T"`: replies to commands carry the time they were written.
    static func withoutTS(_ text: String) -> String {
        text.replacing(/"ts":"[^"]*"/, with: #""ts":"T""#)
    }

    static func replyFrames(_ answer: WireRequest) -> [String]? {
        guard case .reply(let frames) = answer else { return nil }
        return texts(frames)
    }

    static func leaveAllFrames(_ answer: WireRequest) -> [String]? {
        guard case .leaveAll(let frames) = answer else { return nil }
        return texts(frames)
    }

    // MARK: 2.0.0

    @Test func heartbeatIsAnsweredOKJoinedOrNot() throws {
        var channel = PhoenixChannel(version: .v2, clientID: "c1")
        let heartbeat = #"[null,"7","phoenix","heartbeat",{}]"#
        let expected = [#"[null,"7","phoenix","phx_reply",{"status":"ok","response":{}}]"#]
        #expect(Self.replyFrames(channel.handle(try Self.request(heartbeat, .v2), now: Self.now)) == expected)
        _ = channel.handle(try Self.request(#"["1","1","pubsub","phx_join",{}]"#, .v2), now: Self.now)
        #expect(Self.replyFrames(channel.handle(try Self.request(heartbeat, .v2), now: Self.now)) == expected)
    }

    @Test(arguments: [
        #"[null,"2","phoenix","phx_join",{}]"#,  // another event on `phoenix`
        #"["1","2","other","phx_join",{}]"#,  // another topic
        #"["1","2","other","ping",{}]"#,
        #"["1","2","pubsub","phx_leave",{}]"#,  // leave before join
        #"["1","2","pubsub","ping",{}]"#,  // a command before join
        #"["1","2","pubsub","nonsense",{}]"#,  // any other event before join
    ])
    func unmatchedTopicsAndEventsBeforeJoin(frame: String) throws {
        var channel = PhoenixChannel(version: .v2, clientID: "c1")
        let request = try Self.request(frame, .v2)
        let joinRef = request.joinRef.map { String(buffer: $0) } ?? "null"
        #expect(
            Self.replyFrames(channel.handle(request, now: Self.now))
                == [#"[\#(joinRef),"2","\#(request.topic)","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]"#]
        )
        #expect(!channel.isJoined)
        #expect(channel.deliveryPrefix == nil)
    }

    @Test func joinRepliesWithClientIDAndTime() throws {
        var channel = PhoenixChannel(version: .v2, clientID: "c1")
        #expect(!channel.isJoined)
        #expect(channel.deliveryPrefix == nil)
        let answer = channel.handle(try Self.request(#"["3","4","pubsub","phx_join",{}]"#, .v2), now: Self.now)
        #expect(
            Self.replyFrames(answer) == [
                #"["3","4","pubsub","phx_reply",{"status":"ok","response":{"type":"info","message":"Connected successfully","client_id":"c1","ts":"2000-02-29T00:00:00.999Z"}}]"#
            ]
        )
        #expect(channel.isJoined)
        #expect(channel.deliveryPrefix == ByteBuffer(string: #"["3",null,"#))
    }

    @Test func joinWithoutJoinRefUsesItsRef() throws {
        var channel = PhoenixChannel(version: .v2, clientID: "c1")
        _ = channel.handle(try Self.request(#"[null,9,"pubsub","phx_join",{}]"#, .v2), now: Self.now)
        #expect(channel.deliveryPrefix == ByteBuffer(string: "[9,null,"))
        #expect(
            Self.texts(channel.notice(.topicDeleted("t"))).map(Self.withoutTS) == [
                #"[9,null,"pubsub","info",{"type":"info","msg":"topic_deleted","topic":"t","ts":"T"}]"#
            ]
        )
    }

    @Test func secondJoinClosesTheOldChannelThenJoinsTheNew() throws {
        var channel = PhoenixChannel(version: .v2, clientID: "c1")
        _ = channel.handle(try Self.request(#"["1","1","pubsub","phx_join",{}]"#, .v2), now: Self.now)
        let answer = channel.handle(try Self.request(#"["5","6","pubsub","phx_join",{}]"#, .v2), now: Self.now)
        #expect(
            Self.leaveAllFrames(answer) == [
                #"["1",null,"pubsub","phx_close",{}]"#,
                #"["5","6","pubsub","phx_reply",{"status":"ok","response":{"type":"info","message":"Connected successfully","client_id":"c1","ts":"2000-02-29T00:00:00.999Z"}}]"#,
            ]
        )
        #expect(channel.isJoined)
        #expect(channel.deliveryPrefix == ByteBuffer(string: #"["5",null,"#))
    }

    @Test func leaveRepliesThenClosesAndLeavesNoChannel() throws {
        var channel = PhoenixChannel(version: .v2, clientID: "c1")
        _ = channel.handle(try Self.request(#"["1","1","pubsub","phx_join",{}]"#, .v2), now: Self.now)
        let answer = channel.handle(try Self.request(#"["1","2","pubsub","phx_leave",{}]"#, .v2), now: Self.now)
        #expect(
            Self.leaveAllFrames(answer) == [
                #"["1","2","pubsub","phx_reply",{"status":"ok","response":{}}]"#,
                #"["1",null,"pubsub","phx_close",{}]"#,
            ]
        )
        #expect(!channel.isJoined)
        // As before the move: a left 2.0.0 channel's deliveries would carry a null join_ref.
        #expect(channel.deliveryPrefix == ByteBuffer(string: "[null,null,"))
        // Left: a second leave and a command are unmatched again.
        #expect(Self.replyFrames(channel.handle(try Self.request(#"["1","3","pubsub","phx_leave",{}]"#, .v2), now: Self.now)) != nil)
        let ping = channel.handle(try Self.request(#"["1","4","pubsub","ping",{}]"#, .v2), now: Self.now)
        #expect(
            Self.replyFrames(ping) == [#"["1","4","pubsub","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]"#]
        )
        // And a join opens it again.
        _ = channel.handle(try Self.request(#"["8","9","pubsub","phx_join",{}]"#, .v2), now: Self.now)
        #expect(channel.isJoined)
        #expect(channel.deliveryPrefix == ByteBuffer(string: #"["8",null,"#))
    }

    @Test func commandsWhenJoinedAreAddressedToTheirRef() throws {
        var channel = PhoenixChannel(version: .v2, clientID: "c1")
        _ = channel.handle(try Self.request(#"["1","1","pubsub","phx_join",{}]"#, .v2), now: Self.now)
        let answer = channel.handle(try Self.request(#"["x","12","pubsub","publish",{"topic":"t","message":"m","request_id":"r"}]"#, .v2), now: Self.now)
        guard case .command(.publish(let topic, _, let ack), .phoenix(let to)) = answer else {
            Issue.record("not a publish command: \(answer)")
            return
        }
        #expect(topic == "t" && ack)
        #expect(to.version == .v2)
        // The channel's join_ref, not the one the command frame carries.
        #expect(to.joinRef == ByteBuffer(string: #""1""#))
        #expect(to.ref == ByteBuffer(string: #""12""#))
        #expect(to.requestID == "r")

        guard case .command(.ping, _) = channel.handle(try Self.request(#"["1","13","pubsub","ping",{}]"#, .v2), now: Self.now) else {
            Issue.record("not a ping")
            return
        }
    }

    @Test func commandsThatDoNotDecodeGetAnErrorReply() throws {
        var channel = PhoenixChannel(version: .v2, clientID: "c1")
        _ = channel.handle(try Self.request(#"["1","1","pubsub","phx_join",{}]"#, .v2), now: Self.now)
        let answer = channel.handle(try Self.request(#"["1","5","pubsub","subscribe",{"request_id":"r"}]"#, .v2), now: Self.now)
        let frames = try #require(Self.replyFrames(answer))
        #expect(frames.count == 1)
        #expect(frames[0].hasPrefix(#"["1","5","pubsub","phx_reply",{"status":"error","response":{"type":"error","error":{"code":"BAD_REQUEST","#))
        #expect(frames[0].contains(#""request_id":"r""#))
    }

    @Test func unknownEventsWhenJoinedAreNamed() throws {
        var channel = PhoenixChannel(version: .v2, clientID: "c1")
        _ = channel.handle(try Self.request(#"["1","1","pubsub","phx_join",{}]"#, .v2), now: Self.now)
        let answer = channel.handle(try Self.request(#"["1","5","pubsub","shout",{}]"#, .v2), now: Self.now)
        #expect(Self.replyFrames(answer) == [#"["1","5","pubsub","phx_reply",{"status":"error","response":{"reason":"unknown event 'shout'"}}]"#])
        #expect(channel.isJoined)
    }

    @Test func unaddressedErrorsArePushedOnPhoenix() {
        let frames = Self.texts(PhoenixChannel.unaddressedError(.v2, .badRequest("no")))
        #expect(frames.map(Self.withoutTS) == [#"[null,null,"phoenix","phx_error",{"type":"error","error":{"code":"BAD_REQUEST","message":"no"},"ts":"T"}]"#])
        let v1 = Self.texts(PhoenixChannel.unaddressedError(.v1, .badRequest("no")))
        #expect(
            v1.map(Self.withoutTS) == [
                #"{"topic":"phoenix","event":"phx_error","payload":{"type":"error","error":{"code":"BAD_REQUEST","message":"no"},"ts":"T"},"ref":null}"#
            ]
        )
    }

    // MARK: 1.0.0

    @Test func v1JoinRejoinAndLeave() throws {
        var channel = PhoenixChannel(version: .v1, clientID: "c9")
        let heartbeat = channel.handle(try Self.request(#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}"#, .v1), now: Self.now)
        #expect(Self.replyFrames(heartbeat) == [#"{"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"1"}"#])

        let join = channel.handle(try Self.request(#"{"topic":"pubsub","event":"phx_join","payload":{},"ref":"2","join_ref":"2"}"#, .v1), now: Self.now)
        let joined = #"{"topic":"pubsub","event":"phx_reply","payload":{"status":"ok","response":{"type":"info","message":"Connected successfully","client_id":"c9","ts":"2000-02-29T00:00:00.999Z"}},"ref":"#
        #expect(Self.replyFrames(join) == [joined + #""2"}"#])
        #expect(channel.isJoined)
        #expect(channel.deliveryPrefix == nil)  // 1.0.0 deliveries are whole shared frames

        let rejoin = channel.handle(try Self.request(#"{"topic":"pubsub","event":"phx_join","payload":{},"ref":"3","join_ref":"3"}"#, .v1), now: Self.now)
        #expect(Self.leaveAllFrames(rejoin) == [#"{"topic":"pubsub","event":"phx_close","payload":{},"ref":null}"#, joined + #""3"}"#])
        #expect(channel.deliveryPrefix == nil)

        let leave = channel.handle(try Self.request(#"{"topic":"pubsub","event":"phx_leave","payload":{},"ref":"4"}"#, .v1), now: Self.now)
        #expect(
            Self.leaveAllFrames(leave) == [
                #"{"topic":"pubsub","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"4"}"#,
                #"{"topic":"pubsub","event":"phx_close","payload":{},"ref":null}"#,
            ]
        )
        #expect(!channel.isJoined)
        #expect(channel.deliveryPrefix == nil)

        let unmatched = channel.handle(try Self.request(#"{"topic":"pubsub","event":"ping","payload":{},"ref":"5"}"#, .v1), now: Self.now)
        #expect(
            Self.replyFrames(unmatched) == [
                #"{"topic":"pubsub","event":"phx_reply","payload":{"status":"error","response":{"reason":"unmatched topic"}},"ref":"5"}"#
            ]
        )
    }

    @Test func v1CommandsAndNotices() throws {
        var channel = PhoenixChannel(version: .v1, clientID: "c9")
        _ = channel.handle(try Self.request(#"{"topic":"pubsub","event":"phx_join","payload":{},"ref":"2","join_ref":"2"}"#, .v1), now: Self.now)
        let answer = channel.handle(try Self.request(#"{"topic":"pubsub","event":"unsubscribe","payload":{"topic":"t"},"ref":"6"}"#, .v1), now: Self.now)
        guard case .command(.unsubscribe(let topic), let address) = answer else {
            Issue.record("not an unsubscribe: \(answer)")
            return
        }
        #expect(topic == "t")
        var frame = ByteBuffer()
        address.append(.unsubscribed(topic: "t", subscriberCount: 0), to: &frame)
        #expect(
            Self.texts(frame).map(Self.withoutTS) == [
                #"{"topic":"pubsub","event":"phx_reply","payload":{"status":"ok","response":{"type":"ack","action":"unsubscribed","topic":"t","subscriber_count":0,"ts":"T"}},"ref":"6"}"#
            ]
        )
        #expect(
            Self.texts(channel.notice(.serverShutdown)).map(Self.withoutTS) == [
                #"{"topic":"pubsub","event":"info","payload":{"type":"info","msg":"server_shutdown","ts":"T"},"ref":null}"#
            ]
        )
    }

    // MARK: reply addresses

    @Test func replyAddressesFrameLikeTheirCodecs() {
        let receipt = PublishReceipt(topic: "t", messageID: MessageID("m1"), seq: 3, delivered: 1, dropped: 0, timestampMillis: Self.now)
        for message: ServerMessage in [.pong, .published(receipt), .error(.topicNotFound("t"))] {
            var native = ByteBuffer(string: "before")
            ReplyAddress.native(requestID: "r").append(message, to: &native)
            var expected = ByteBuffer(string: "before")
            NativeCodec.append(message, requestID: "r", to: &expected)
            #expect(Self.texts(native.getSlice(at: 6, length: native.readableBytes - 6)!).map(Self.withoutTS)
                == Self.texts(expected.getSlice(at: 6, length: expected.readableBytes - 6)!).map(Self.withoutTS))
            #expect(native.getString(at: 0, length: 6) == "before")

            for version in [PhoenixVersion.v1, .v2] {
                var phoenix = ByteBuffer()
                let joinRef = ByteBuffer(string: #""j""#)
                let ref = ByteBuffer(string: "7")
                ReplyAddress.phoenix(version, joinRef: joinRef, ref: ref, requestID: nil).append(message, to: &phoenix)
                let reply = PhoenixCodec.reply(version, joinRef: joinRef, ref: ref, message: message, requestID: nil)
                #expect(Self.texts(phoenix).map(Self.withoutTS) == Self.texts(reply).map(Self.withoutTS))
            }
        }
        var frame = ByteBuffer()
        ReplyAddress.native(requestID: "r").append(.published(receipt), to: &frame)
        #expect(
            Self.texts(frame) == [
                #"{"type":"ack","action":"published","topic":"t","message_id":"m1","seq":3,"stats":{"delivered":1,"dropped":0},"request_id":"r","ts":"2000-02-29T00:00:00.999Z"}"#
            ]
        )
        var v2 = ByteBuffer()
        ReplyAddress.phoenix(.v2, joinRef: ByteBuffer(string: #""j""#), ref: ByteBuffer(string: "7"), requestID: nil).append(.published(receipt), to: &v2)
        #expect(
            Self.texts(v2) == [
                #"["j",7,"pubsub","phx_reply",{"status":"ok","response":{"type":"ack","action":"published","topic":"t","message_id":"m1","seq":3,"stats":{"delivered":1,"dropped":0},"ts":"2000-02-29T00:00:00.999Z"}}]"#
            ]
        )
    }
}
