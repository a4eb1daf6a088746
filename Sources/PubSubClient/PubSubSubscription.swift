/// The elements of one subscription: events in order, each once, and ``PubSubGap``s where
/// messages are lost. It ends when the topic is deleted (throwing
/// ``PubSubClientError/topicDeleted(_:)``), when the server refuses the resubscribe after a
/// reconnect, or when the client is closed. Cancelling the task that consumes it (or dropping
/// it) unsubscribes.
///
/// ```swift
/// let subscription = try await client.subscribe("orders", from: .lastN(10))
/// let consumer = Task {
///     for try await element in subscription {
///         if case .event(let event) = element { print(event.seq, event.payload) }
///     }
/// }
/// consumer.cancel()   // unsubscribes
/// ```
///
/// Elements wait in memory until the consumer takes them, up to
/// ``PubSubClientConfiguration/maxPendingEvents`` and ``PubSubClientConfiguration/maxPendingBytes``:
/// past that, events are dropped and a ``PubSubGap`` before the next one says which.
public struct PubSubSubscription: AsyncSequence, Sendable {
    public typealias Element = SubscriptionElement

    /// The topic or pattern subscribed to.
    public let topic: String
    let stream: AsyncThrowingStream<SubscriptionElement, any Error>
    /// What waits in `stream`, for the client's bound.
    let pending: PendingElements
    /// Keeps the client (and so the connection) alive while the sequence is in use.
    let client: PubSubClient

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), pending: pending, client: client)
    }

    /// Iterates a ``PubSubSubscription``.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<SubscriptionElement, any Error>.AsyncIterator
        let pending: PendingElements
        let client: PubSubClient

        public mutating func next() async throws -> SubscriptionElement? {
            let element = try await base.next()
            if let element { pending.take(element) }
            return element
        }
    }
}

/// A publish sent but not yet acknowledged, from ``PubSubClient/startPublish(_:_:)``, to send many
/// in order without waiting for each ack.
///
/// ```swift
/// var pending: [PendingPublish] = []
/// for line in lines { pending.append(try await client.startPublish("logs", line)) }
/// for publish in pending { _ = try await publish.receipt() }
/// ```
public struct PendingPublish: Sendable {
    let ticket: Int
    let client: PubSubClient

    /// Waits for the server's ack. Await each one: the client keeps a receipt until it is taken.
    public func receipt() async throws -> PublishReceipt {
        try await client.receipt(ticket)
    }
}
