import Synchronization

/// Where the client hands a subscription its elements, with a bound on what waits there unread
/// (``PubSubClientConfiguration/maxPendingEvents`` and ``PubSubClientConfiguration/maxPendingBytes``).
///
/// A consumer slower than its topic would otherwise make the client hold every event it has
/// not taken yet, without end. Instead, an event that finds the bound reached is dropped, as
/// the server's `drop-newest` backpressure drops for a slow connection: the consumer learns what
/// it lost from a ``PubSubGap`` before the next event it gets. Delivery starts again once the
/// consumer has taken half of what waited, so a consumer that stays just behind gets a few
/// long gaps rather than a gap between every two events.
///
/// Gaps are never dropped (they are few, and they say what is lost); the machine's own gaps
/// come after the one for events dropped here, in the order things happened.
struct SubscriptionOutlet {
    let continuation: AsyncThrowingStream<SubscriptionElement, any Error>.Continuation
    let pending: PendingElements
    /// The topic or pattern subscribed to, for the gaps declared here.
    let topic: String
    let maxEvents: Int
    let maxBytes: Int
    /// Dropped since the consumer last got an event: the seqs (in `epoch`) for a topic; for a
    /// pattern, whose events come from many topics, only that some were.
    private var dropped: (first: Int, last: Int, epoch: String?)?
    /// Full: events are dropped until the consumer has taken half of what waits.
    private var full = false

    init(continuation: AsyncThrowingStream<SubscriptionElement, any Error>.Continuation, topic: String, maxEvents: Int?, maxBytes: Int?) {
        self.continuation = continuation
        self.pending = PendingElements()
        self.topic = topic
        self.maxEvents = max(maxEvents ?? .max, 1)
        self.maxBytes = max(maxBytes ?? .max, 1)
    }

    mutating func deliver(_ element: SubscriptionElement) {
        switch element {
        case .event(let event):
            let size = PendingElements.size(of: element)
            let (count, bytes) = pending.current
            if full {
                full = count > maxEvents / 2 || bytes > maxBytes / 2
            } else {
                // An event larger than the byte bound still goes through when nothing waits.
                full = count >= maxEvents || (count > 0 && bytes + size > maxBytes)
            }
            if full {
                // One run, one epoch: a new epoch comes after the machine's gap, which flushed the run.
                dropped = (dropped?.first ?? event.seq, event.seq, event.epoch)
                return
            }
            flushDropped()
            yield(element, size: size)
        case .gap:
            flushDropped()
            yield(element, size: 0)
        }
    }

    func finish(throwing error: (any Error)? = nil) {
        continuation.finish(throwing: error)
    }

    private mutating func flushDropped() {
        guard let run = dropped else { return }
        dropped = nil
        let gap =
            ClientMachine.isPattern(topic)
            ? PubSubGap(topic: topic, epoch: nil, missing: nil)
            : PubSubGap(topic: topic, epoch: run.epoch, missing: run.first...run.last)
        yield(.gap(gap), size: 0)
    }

    private func yield(_ element: SubscriptionElement, size: Int) {
        pending.add(size: size)
        continuation.yield(element)
    }
}

/// How many elements, and how many payload bytes, a subscription's consumer has yet to take:
/// added to by the client as it yields, taken from by the consumer's iterator.
final class PendingElements: Sendable {
    private let state = Mutex<(count: Int, bytes: Int)>((0, 0))

    /// What an element counts for against ``PubSubClientConfiguration/maxPendingBytes``: its
    /// payload's bytes (the other fields are short and bounded by the server's topic and id rules).
    static func size(of element: SubscriptionElement) -> Int {
        if case .event(let event) = element { return event.payload.text.utf8.count }
        return 0
    }

    var current: (count: Int, bytes: Int) { state.withLock { $0 } }

    func add(size: Int) {
        state.withLock { state in
            state.count += 1
            state.bytes += size
        }
    }

    func take(_ element: SubscriptionElement) {
        let size = Self.size(of: element)
        state.withLock { state in
            state.count -= 1
            state.bytes -= size
        }
    }
}
