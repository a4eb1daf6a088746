import NIOCore
import PubSubCore
import PubSubProtocol

/// A connection's held publishes (``CommandDispatcher``): a read's consecutive publishes to one
/// topic, with where each one's reply goes, in storage kept from batch to batch.
///
///     batch.messages.append(message); batch.replies.append(.init(ack: true, address: .native(requestID: "p1")))
///     let answer = broker.publish(topic: batch.topic, messages: &batch.messages, cache: &cache, receipts: &batch.receipts)
struct PublishBatch {
    /// The most publishes held: enough to visit each subscriber once for many messages, few
    /// enough that the first waits only for a few dozen frames to be decoded.
    static let limit = 64

    struct Reply {
        var ack: Bool
        var address: ReplyAddress
    }

    var topic = ""
    var messages: [MessageInput] = []
    var replies: [Reply] = []
    var receipts: [PublishReceipt] = []

    var isEmpty: Bool { messages.isEmpty }

    /// Appends each publish's reply (its ack, or the error that stopped it and those after it)
    /// to `buffer`, given the receipts of those published.
    func encodeReplies(receipts: [PublishReceipt], failure: PubSubError?, to buffer: inout ByteBuffer) {
        // Each reply and receipt read in place through the arrays: a copy of either would
        // retain and release what it holds once more per publish.
        for index in replies.indices {
            if index < receipts.count {
                if replies[index].ack { replies[index].address.append(.published(receipts[index]), to: &buffer) }
            } else if let failure {
                replies[index].address.append(.error(failure), to: &buffer)
            }
        }
    }

    /// Empty again, keeping the storage (the engine empties `messages` itself).
    mutating func removeAll() {
        messages.removeAll(keepingCapacity: true)
        replies.removeAll(keepingCapacity: true)
        receipts.removeAll(keepingCapacity: true)
    }
}
