/// The server's acknowledgement of a publish: where the message went in the topic.
///
/// ```swift
/// let receipt = try await client.publish("orders", ["total": 12])
/// print(receipt.seq, receipt.messageID, receipt.delivered ?? 0)
/// ```
public struct PublishReceipt: Sendable, Hashable {
    public let topic: String
    /// The message's id (the publisher's, or the UUID the server gave it).
    public let messageID: String
    /// The message's seq in the topic.
    public let seq: Int
    /// How many subscriber queues took it; nil with the redis engine, which acks before delivery.
    public let delivered: Int?
    /// How many messages this publish caused to be dropped; nil with the redis engine.
    public let dropped: Int?

    public init(topic: String, messageID: String, seq: Int, delivered: Int?, dropped: Int?) {
        self.topic = topic
        self.messageID = messageID
        self.seq = seq
        self.delivered = delivered
        self.dropped = dropped
    }
}
