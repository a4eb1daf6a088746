/// The last `capacity` publications of a topic, oldest first. Sequence numbers in it are
/// contiguous, so a `since` lookup is arithmetic, not a search.
struct HistoryRing {
    let capacity: Int
    private var storage: [Publication?]
    private var start = 0
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
        self.storage = Array(repeating: nil, count: self.capacity)
    }

    mutating func append(_ publication: consuming Publication) {
        guard capacity > 0 else { return }
        if count < capacity {
            storage[(start + count) % capacity] = publication
            count += 1
        } else {
            storage[start] = publication
            start = (start + 1) % capacity
        }
    }

    /// Sequence number of the oldest retained publication, if any.
    var oldestSeq: UInt64? { count == 0 ? nil : storage[start]!.seq }

    /// The newest `n` publications, oldest first.
    func last(_ n: Int) -> [Publication] {
        let take = min(max(n, 0), count)
        var result: [Publication] = []
        result.reserveCapacity(take)
        for offset in (count - take)..<count {
            result.append(storage[(start + offset) % capacity]!)
        }
        return result
    }

    /// Every retained publication with `seq > since`, oldest first.
    func after(_ since: UInt64) -> [Publication] {
        guard let oldest = oldestSeq else { return [] }
        let newest = oldest + UInt64(count) - 1
        if since >= newest { return [] }
        if since < oldest { return last(count) }
        return last(Int(newest - since))
    }
}
