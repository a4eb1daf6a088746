/// This node's subscriber counts as the cluster has them, so that a heartbeat sends only what
/// changed since the last one (nothing, on a quiet node) and not every topic each time.
struct CountsWriter {
    /// One heartbeat's write: all the counts, or only the changes (0: the topic has none left).
    struct Write: Sendable {
        let full: Bool
        let pairs: [(topic: String, count: Int)]
        /// The version of the counts once written: it changes whenever they do, so the other
        /// nodes read them again only then.
        let version: Int64
        let counts: [String: Int]
    }

    /// What Redis holds, as far as this node knows; nil when it does not know (never written, a
    /// write that failed, counts Redis no longer had): the next write is a full one.
    private var written: [String: Int]?
    private var version: Int64 = 0

    mutating func next(_ counts: [String: Int]) -> Write {
        // An empty hash is no key in Redis: after one, the missing key says nothing, so the
        // next write is a full one too.
        guard let written, !written.isEmpty else {
            if self.written == nil || !counts.isEmpty { version += 1 }
            return Write(full: true, pairs: counts.map { ($0.key, $0.value) }, version: version, counts: counts)
        }
        var pairs: [(topic: String, count: Int)] = []
        for (topic, count) in counts where written[topic] != count { pairs.append((topic, count)) }
        for topic in written.keys where counts[topic] == nil { pairs.append((topic, 0)) }
        if !pairs.isEmpty { version += 1 }
        return Write(full: false, pairs: pairs, version: version, counts: counts)
    }

    mutating func wrote(_ write: Write) { written = write.counts }

    mutating func forget() { written = nil }
}

/// The other nodes' subscriber counts as this node last read them, so that a heartbeat reads
/// again only those of a node whose version changed.
struct CountsReader {
    private var read: [String: (version: Int64?, counts: [String: Int])] = [:]
    /// The other nodes' counts added up.
    private(set) var totals: [String: Int] = [:]

    /// A node of an older build writes no version: its counts are read every time.
    func needsReading(_ node: String, version: Int64?) -> Bool {
        version == nil || read[node]?.version != version
    }

    /// `fresh`: the counts read this heartbeat, by node; `live`: every other node still in the
    /// cluster (the counts of the others are dropped).
    mutating func update(live: Set<String>, fresh: [String: (version: Int64?, counts: [String: Int])]) {
        let gone = read.keys.filter { !live.contains($0) }
        guard !fresh.isEmpty || !gone.isEmpty else { return }
        for node in gone { read[node] = nil }
        read.merge(fresh) { $1 }
        var totals: [String: Int] = [:]
        for node in read.values {
            for (topic, count) in node.counts { totals[topic, default: 0] += count }
        }
        self.totals = totals
    }
}
