import NIOCore
import PubSubCore
import PubSubProtocol

/// A session's held publishes (``WebSocketSession/publish(topic:message:ack:requestID:encode:)``):
/// a read's consecutive native publishes to one topic, with what each one's reply needs, in
/// storage kept from batch to batch.
///
///     batch.messages.append(message); batch.replies.append(.init(ack: true, requestID: "p1"))
///     try broker.publish(topic: batch.topic, messages: &batch.messages, cache: &cache, receipts: &batch.receipts)
struct PublishBatch {
    /// The most publishes held: enough to visit each subscriber once for many messages, few
    /// enough that the first waits only for a few dozen frames to be decoded.
    static let limit = 64

    struct Reply {
        var ack: Bool
        var requestID: String?
    }

    var topic = ""
    var messages: [MessageInput] = []
    var replies: [Reply] = []
    var receipts: [PublishReceipt] = []
    var encode: ((ServerMessage, String?, inout ByteBuffer) -> Void)?

    /// Empty again, keeping the storage (the broker empties `messages` itself; any engine).
    mutating func removeAll() {
        messages.removeAll(keepingCapacity: true)
        replies.removeAll(keepingCapacity: true)
        receipts.removeAll(keepingCapacity: true)
    }
}
