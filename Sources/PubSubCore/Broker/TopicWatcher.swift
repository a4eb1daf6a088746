import Synchronization

/// Where an engine tells the node of topics it does not follow (no ``TopicSink`` of this
/// node's) whose names begin with one of the prefixes the node watches: the node's wildcard
/// subscriptions (SPEC 9) catch topics created after them this way.
///
///     broker.watchTopics(prefixes: ["orders."], watcher: hub)
///
/// The watcher subscribes the topic as usual and reads its history after `seq`, so what it
/// was not handed meanwhile is replayed.
public protocol TopicWatcher: AnyObject, Sendable {
    /// `topic` exists and has, or will have, publications after `seq` that this node was not
    /// handed. Called outside the engine's locks, perhaps more than once for a topic.
    func topicAppeared(_ topic: String, after seq: UInt64)
}

/// An engine's record of what the node watches (``Broker/watchTopics(prefixes:watcher:)``):
/// the prefixes, and the watcher held weakly (the node's hub holds the engine).
///
///     if let watcher = watch.watcher(of: name) { watcher.topicAppeared(name, after: 0) }
public final class TopicWatch: Sendable {
    private struct State {
        var prefixes: Set<String> = []
        weak var watcher: (any TopicWatcher)?
    }

    private let state = Mutex(State())
    /// Whether any prefix is watched, read without the lock: an engine that watches nothing
    /// pays one load.
    private let active = Atomic<Bool>(false)

    public init() {}

    /// Replaces the prefixes and the watcher.
    public func set(prefixes: Set<String>, watcher: any TopicWatcher) {
        state.withLock(of: self) { state in
            state.prefixes = prefixes
            state.watcher = prefixes.isEmpty ? nil : watcher
            active.store(!prefixes.isEmpty, ordering: .releasing)
        }
    }

    /// The prefixes watched now.
    public var prefixes: Set<String> { state.withLock(of: self) { $0.prefixes } }

    /// The watcher to tell of `topic`: nil when no prefix matches it.
    public func watcher(of topic: String) -> (any TopicWatcher)? {
        guard active.load(ordering: .acquiring) else { return nil }
        return state.withLock(of: self) { state in
            state.prefixes.contains { topic.hasPrefix($0) } ? state.watcher : nil
        }
    }
}
