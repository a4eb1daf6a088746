import NIOCore

/// An entry of a connection's outbound queue: one reference (8 bytes), so a delivery is one
/// retain and a queue slot an eighth of a cache line.
public enum OutboundItem: Sendable {
    /// A live or replayed event; its bytes are its frame in the subscriber's format
    /// (`content.frames`).
    case publication(Publication)
    /// A reply or notice already encoded by the session (ack, error, pong, info). Never dropped.
    case frame(EncodedFrame)
    /// The topic was deleted; the session forgets it and tells its client.
    case topicDeleted(HubTopic)
    /// Publications of a topic this connection will never get (no longer retained when the
    /// engine caught up after losing its link); the session tells its client.
    case missed(MissedPublications)

    /// A reply or notice.
    public static func frame(_ bytes: ByteBuffer) -> OutboundItem { .frame(EncodedFrame(bytes)) }
}

/// How many publications of a topic a subscriber missed, boxed so that an ``OutboundItem``
/// stays one reference.
public final class MissedPublications: Sendable {
    public let topic: String
    public let count: Int
    public init(topic: String, count: Int) {
        self.topic = topic
        self.count = count
    }
}

/// A reply's or notice's frame, boxed so that an ``OutboundItem`` stays one reference.
public final class EncodedFrame: Sendable {
    public let bytes: ByteBuffer
    public init(_ bytes: ByteBuffer) { self.bytes = bytes }
}

/// A connection's outbound items in order: a ring buffer that moves items in and out instead
/// of copying them, so a delivery costs one retain of the shared publication when it is queued
/// and one release when it is written, nothing more.
///
///     var queue = OutboundQueue()
///     queue.append(.frame(ack))
///     while let item = queue.popFirst() { write(item) }
///
/// (`Deque.append` borrows its element and copies it into storage: two more retains and
/// releases of the same shared objects per delivery; docs/design.md has what that cost.)
/// Storage is allocated on the first append and kept, like the queue's capacity, until the
/// queue is dropped.
public struct OutboundQueue: ~Copyable {
    private var storage: UnsafeMutablePointer<OutboundItem>?
    private var capacity = 0
    private var head = 0
    public private(set) var count = 0

    public init() {}

    deinit {
        destroyItems()
        storage?.deallocate()
    }

    public var isEmpty: Bool { count == 0 }

    /// The storage index of the item `offset` places after the oldest one.
    private func slot(_ offset: Int) -> Int { (head + offset) & (capacity - 1) }

    public mutating func append(_ item: consuming OutboundItem) {
        if count == capacity { grow() }
        (storage.unsafelyUnwrapped + slot(count)).initialize(to: item)
        count += 1
    }

    /// Removes and returns the oldest item.
    public mutating func popFirst() -> OutboundItem? {
        guard count > 0 else { return nil }
        let item = (storage.unsafelyUnwrapped + head).move()
        head = slot(1)
        count -= 1
        return item
    }

    /// Drops every item, keeping the storage.
    public mutating func removeAll() {
        destroyItems()
        head = 0
        count = 0
    }

    /// Releases the items in place (the caller resets the indices or frees the storage).
    private func destroyItems() {
        guard let storage else { return }
        for offset in 0..<count { (storage + slot(offset)).deinitialize(count: 1) }
    }

    /// Exchanges the contents (and storage) of two queues: how a writer takes a whole queue
    /// under the publisher's lock in O(1).
    public mutating func swapContents(with other: inout OutboundQueue) {
        swap(&storage, &other.storage)
        swap(&capacity, &other.capacity)
        swap(&head, &other.head)
        swap(&count, &other.count)
    }

    /// The items, oldest first (for tests and diagnostics; the writer pops them).
    public func map<T>(_ transform: (OutboundItem) throws -> T) rethrows -> [T] {
        guard let storage else { return [] }
        var result: [T] = []
        result.reserveCapacity(count)
        for offset in 0..<count { result.append(try transform(storage[slot(offset)])) }
        return result
    }

    private mutating func grow() {
        // Small at first: most connections hold a reply or two at a time (idle memory per
        // connection counts), and the ring doubles for the busy ones.
        let newCapacity = Swift.max(4, capacity * 2)
        let newStorage = UnsafeMutablePointer<OutboundItem>.allocate(capacity: newCapacity)
        if let storage {
            for offset in 0..<count { (newStorage + offset).initialize(to: (storage + slot(offset)).move()) }
            storage.deallocate()
        }
        storage = newStorage
        capacity = newCapacity
        head = 0
    }
}

// It owns its storage alone (not copyable) and holds only Sendable items: it may move between
// threads with its owner, as it does when a writer takes it under the subscriber's lock.
extension OutboundQueue: @unchecked Sendable {}
