import NIOCore
import NIOPosix
import PubSubCore

/// An engine that answers everything later, as one behind the network does: it runs each
/// call of the engine it wraps on an event loop of its own and answers with that future, and
/// hands publications to the node's sinks from that loop. The Hub's joins and the sessions'
/// waits for answers are tested with it, against the memory engine's behaviour.
///
///     let broker = DeferredBroker(MemoryBroker(configuration: BrokerConfiguration()))
public final class DeferredBroker: Broker {
    public let engine: any Broker
    private let loop: any EventLoop

    public init(_ engine: any Broker, loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()) {
        self.engine = engine
        self.loop = loop
    }

    private func later<Value: Sendable>(_ body: @escaping @Sendable () -> BrokerAnswer<Value>) -> BrokerAnswer<Value> {
        let loop = self.loop
        return .later(
            loop.flatSubmit {
                switch body() {
                case .now(let result): loop.makeCompletedFuture(result.mapError { $0 as any Error })
                case .later(let future): future
                }
            }
        )
    }

    public func createTopic(_ name: String) -> BrokerAnswer<TopicSnapshot> { later { self.engine.createTopic(name) } }
    public func deleteTopic(_ name: String) -> BrokerAnswer<TopicSnapshot> { later { self.engine.deleteTopic(name) } }
    public func topic(_ name: String) -> BrokerAnswer<TopicSnapshot> { later { self.engine.topic(name) } }
    public func topics() -> BrokerAnswer<[TopicSnapshot]> { later { self.engine.topics() } }
    public func publishedCount() -> BrokerAnswer<Int> { later { self.engine.publishedCount() } }
    public func status() -> EngineStatus { engine.status() }
    public func start(load: @escaping @Sendable () -> NodeLoad) { engine.start(load: load) }
    public func shutdown() async { await engine.shutdown() }

    public func publish(
        topic: String, messages: inout [MessageInput], cache: inout PublishCache, receipts: inout [PublishReceipt]
    ) -> PublishAnswer {
        let taken = messages
        messages.removeAll(keepingCapacity: true)
        let now = cache.now
        let engine = self.engine
        return .later(
            loop.flatSubmit {
                var messages = taken
                var cache = PublishCache()
                cache.now = now
                var receipts: [PublishReceipt] = []
                switch engine.publish(topic: topic, messages: &messages, cache: &cache, receipts: &receipts) {
                case .now(let failure):
                    return self.loop.makeSucceededFuture(PublishResult(receipts: receipts, failure: failure))
                case .later(let future):
                    return future
                }
            }
        )
    }

    public func history(topic: String, _ query: HistoryQuery) -> BrokerAnswer<History> {
        later { self.engine.history(topic: topic, query) }
    }

    public func subscribe(topic: String, sink: any TopicSink) -> BrokerAnswer<UInt64> {
        later { self.engine.subscribe(topic: topic, sink: sink) }
    }

    public func unsubscribe(topic: String, sink: any TopicSink) {
        loop.execute { self.engine.unsubscribe(topic: topic, sink: sink) }
    }

    public func joinPresence(topic: String, entry: PresenceEntry) -> BrokerAnswer<Void> {
        later { self.engine.joinPresence(topic: topic, entry: entry) }
    }

    public func leavePresence(topic: String, clientID: String) {
        loop.execute { self.engine.leavePresence(topic: topic, clientID: clientID) }
    }

    public func presence(topic: String) -> BrokerAnswer<[PresenceEntry]> {
        later { self.engine.presence(topic: topic) }
    }

    public func watchTopics(prefixes: Set<String>, watcher: any TopicWatcher) -> BrokerAnswer<Void> {
        later { self.engine.watchTopics(prefixes: prefixes, watcher: watcher) }
    }
}
