import NIOCore
import PubSubCore

// Provisional: replaced by the protocol module's own definitions (Phoenix/PhoenixChannel.swift).

public enum ReplyAddress: Sendable {
    case native(requestID: String?)
    case phoenix(PhoenixVersion, joinRef: ByteBuffer?, ref: ByteBuffer?, requestID: String?)

    public func append(_ message: ServerMessage, to buffer: inout ByteBuffer) {
        switch self {
        case .native(let requestID):
            NativeCodec.append(message, requestID: requestID, to: &buffer)
        case .phoenix(let version, let joinRef, let ref, let requestID):
            PhoenixCodec.appendReply(version, joinRef: joinRef, ref: ref, message: message, requestID: requestID, to: &buffer)
        }
    }
}

public enum WireRequest: Sendable {
    case command(ClientCommand, ReplyAddress)
    case reply(ByteBuffer)
    case leaveAll(then: ByteBuffer)
}
