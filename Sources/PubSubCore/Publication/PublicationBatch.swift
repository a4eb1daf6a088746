/// New publications of one topic on their way from the engine to the node, in stack storage
/// the engine lends for one ``TopicSink/deliver(_:counters:receipts:)`` call: the engine puts
/// each message's content in, the sink encodes its frames in place and makes each content
/// into its ``Publication``, and the engine takes the publications on to its history. (In
/// place: each content is moved once, into its publication.)
///
///     withUnsafeTemporaryAllocation(...) { ... sink.deliver(&batch, counters: counters, receipts: &receipts) ... }
///
/// One of the few places outside Swift's memory safety (docs/design.md): a batch is made only
/// by `withPublicationBatch`, and the sink makes each publication exactly once, in any order,
/// before the engine takes them; the storage lives
/// on the stack for the call, so nothing is allocated per batch.
public struct PublicationBatch: ~Copyable {
    private let contents: UnsafeMutablePointer<PublicationContent>
    private let publications: UnsafeMutablePointer<Publication>
    public let count: Int

    fileprivate init(contents: UnsafeMutablePointer<PublicationContent>, publications: UnsafeMutablePointer<Publication>, count: Int) {
        self.contents = contents
        self.publications = publications
        self.count = count
    }

    /// Lends content `index` to `body`, in place (its frames are encoded into it), before
    /// its publication is made.
    public func update(_ index: Int, _ body: (inout PublicationContent) -> Void) {
        precondition(index >= 0 && index < count)
        body(&(contents + index).pointee)
    }

    /// Makes content `index` into its publication (once each): the content moves into it.
    public func makePublication(_ index: Int, counters: TopicCounters) {
        precondition(index >= 0 && index < count)
        (publications + index).initialize(to: Publication((contents + index).move(), topicCounters: counters))
    }

    /// The publications set so far, for the fan-out (all of them once the sink has set each).
    public var publicationBuffer: UnsafeBufferPointer<Publication> {
        UnsafeBufferPointer(start: publications, count: count)
    }
}

/// Lends `body` a batch for `count` publications: `fill` is called for each index to make its
/// content, `body` hands the batch to the sink, and `take` receives each publication, in order,
/// after.
@inline(__always)
func withPublicationBatch(
    count: Int, fill: (Int) -> PublicationContent, deliver: (inout PublicationBatch) -> Void, take: (consuming Publication) -> Void
) {
    withUnsafeTemporaryAllocation(of: PublicationContent.self, capacity: count) { contents in
        withUnsafeTemporaryAllocation(of: Publication.self, capacity: count) { publications in
            for index in 0..<count { (contents.baseAddress! + index).initialize(to: fill(index)) }
            var batch = PublicationBatch(contents: contents.baseAddress!, publications: publications.baseAddress!, count: count)
            deliver(&batch)
            for index in 0..<count { take((publications.baseAddress! + index).move()) }
        }
    }
}
