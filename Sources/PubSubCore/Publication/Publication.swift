import NIOCore

/// What a publisher hands the broker: an optional client-chosen id and the payload's JSON bytes.
///
///     let input = MessageInput(id: nil, payload: ByteBuffer(string: #"{"cpu":0.85}"#))
///     let receipt = try broker.publish(topic: "metrics", message: input)
public struct MessageInput: Sendable {
    public var id: String?
    /// The payload as raw, already validated JSON text; it is passed through byte for byte.
    /// It may be a slice of a larger buffer (the frame it arrived in): the topic keeps a slice
    /// of the encoded event, or its own copy, never this buffer.
    public var payload: ByteBuffer {
        @inlinable get { storedPayload! }
        @inlinable set { storedPayload = newValue }
    }
    /// Nil only once `takePayload()` has moved it out, after which the message is not read.
    /// An optional so the topic can move the payload out of the message it consumes: a copy
    /// was a retain of the frame's storage, and the message's end a release. (Held this way,
    /// the compiler also stopped copying the whole message into and out of the decoded
    /// command: 3 retains and 2 releases fewer per publish in all.)
    @usableFromInline var storedPayload: ByteBuffer?

    @inlinable
    public init(id: String?, payload: ByteBuffer) {
        self.id = id
        self.storedPayload = payload
    }

    /// Moves the payload out; the message must not be read after.
    package mutating func takePayload() -> ByteBuffer {
        storedPayload.take()!
    }
}

/// One published message, shared by reference between the topic's history and every
/// subscriber queue it is fanned out to.
///
/// Immutable: its ``content`` (the message, its place in the topic and its frames, one per
/// wire format that had subscribers when it was published) is built and encoded by the topic,
/// then moved in. Everything is read through `let`s of a non-copyable value: no retain of what
/// it holds per read (a `var` of a shared object would cost one each time).
public final class Publication: Sendable {
    public let content: PublicationContent
    /// Per-topic drop counter, so a drop on any queue is charged to the right topic.
    let topicCounters: TopicCounters

    public var topic: String { content.topic }
    public var seq: UInt64 { content.seq }
    public var id: MessageID { content.id }
    /// A slice of an encoded frame where the payload sits verbatim, else its own copy (never
    /// the buffer the message arrived in).
    public var payload: ByteBuffer { content.payload }
    public var timestampMillis: Int64 { content.timestampMillis }
    /// Encoded frames by wire-format slot; `nil` where no subscriber of that format existed.
    public var frames: PublicationFrames { content.frames }

    public init(_ content: consuming PublicationContent, topicCounters: TopicCounters) {
        self.content = content
        self.topicCounters = topicCounters
    }

    /// The payload in a buffer of its own, for a publication none of whose frames holds it
    /// verbatim: never the buffer the message arrived in (it would keep the whole read alive).
    package static func ownCopy(of payload: ByteBuffer) -> ByteBuffer {
        var copy = ByteBufferAllocator().buffer(capacity: payload.readableBytes)
        copy.writeImmutableBuffer(payload)
        return copy
    }

    /// The same message with `frames`, in a new object: the shared publication never changes.
    func with(frames: PublicationFrames) -> Publication {
        let content = PublicationContent(
            topic: topic, seq: seq, id: id, payload: payload, timestampMillis: timestampMillis, latencyMark: content.latencyMark,
            frames: frames
        )
        return Publication(content, topicCounters: topicCounters)
    }

    /// Builds a publication outside a broker, for encoders' tests and benchmarks (with `frames`
    /// already encoded, for queue benchmarks).
    public convenience init(
        topic: String, seq: UInt64, id: String, payload: ByteBuffer, timestampMillis: Int64, frames: PublicationFrames = PublicationFrames()
    ) {
        self.init(
            PublicationContent(topic: topic, seq: seq, id: MessageID(id), payload: payload, timestampMillis: timestampMillis, frames: frames),
            topicCounters: TopicCounters()
        )
    }
}

/// A publication's content: the message, its place in the topic and its frames. The topic
/// builds it, lends it to the encoders slot by slot, then moves it into the shared
/// ``Publication``. Not copyable, so it is only ever lent or moved: a copy would retain the
/// topic name, the payload and every frame, and release them again.
public struct PublicationContent: ~Copyable, Sendable {
    public let topic: String
    public let seq: UInt64
    public let id: MessageID
    /// The payload: as published while the frames are encoded (possibly a slice of the frame it
    /// arrived in), then what the publication keeps.
    public internal(set) var payload: ByteBuffer
    public let timestampMillis: Int64
    /// Whether, and by which subscribers, its delivery is timed (SPEC 8's latency).
    public let latencyMark: LatencyMark
    /// The frames of the slots encoded so far (encoders run in slot order, and a later one may
    /// build on an earlier one's frame).
    public internal(set) var frames: PublicationFrames

    public init(
        topic: String, seq: UInt64, id: MessageID, payload: ByteBuffer, timestampMillis: Int64, latencyMark: LatencyMark = .none,
        frames: PublicationFrames = PublicationFrames()
    ) {
        self.topic = topic
        self.seq = seq
        self.id = id
        self.payload = payload
        self.timestampMillis = timestampMillis
        self.latencyMark = latencyMark
        self.frames = frames
    }
}

/// A publication's frames by wire-format slot, stored inline (no array to allocate per
/// publication). A broker has at most ``capacity`` formats: the server's five (native, Phoenix
/// 1.0.0 and 2.0.0, and the first two compressed), a slot each and no spare, since every
/// publication carries them all.
///
/// Next to each frame it keeps where the frame's bytes lie, so the writers copy events out of
/// a batch of publications with no `ByteBuffer` call per event (each costs a retain, a release
/// and NIO's run-time exclusivity checks). The addresses stay valid as long as this value or a
/// copy of it exists: a frame is never written in place (a slot is only ever replaced, and
/// replacing it takes the new frame's address), so its storage never moves.
public struct PublicationFrames: @unchecked Sendable {
    public static let capacity = 5
    private var slot0, slot1, slot2, slot3, slot4: ByteBuffer?
    // Inlinable readers (the writer, in another module, reads them per event): a call would
    // first copy the whole struct to pass it.
    @usableFromInline var addresses: (
        UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer,
        UnsafeRawBufferPointer, UnsafeRawBufferPointer
    ) = (Self.none, Self.none, Self.none, Self.none, Self.none)
    @usableFromInline static var none: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

    public init() {}

    /// The bytes of the frame in `slot` (empty where there is none), valid while this value
    /// (or a copy) exists; their `count` is the frame's size, read without touching (retaining)
    /// the frame itself.
    @inlinable
    public func bytes(_ slot: Int) -> UnsafeRawBufferPointer {
        switch slot {
        case 0: addresses.0
        case 1: addresses.1
        case 2: addresses.2
        case 3: addresses.3
        case 4: addresses.4
        default: Self.none
        }
    }

    public subscript(slot: Int) -> ByteBuffer? {
        get {
            switch slot {
            case 0: slot0
            case 1: slot1
            case 2: slot2
            case 3: slot3
            case 4: slot4
            default: nil
            }
        }
        set {
            // The address of the frame's bytes as they lie in the storage it keeps.
            let address = newValue.map { frame in frame.withUnsafeReadableBytes { $0 } } ?? Self.none
            switch slot {
            case 0: slot0 = newValue; addresses.0 = address
            case 1: slot1 = newValue; addresses.1 = address
            case 2: slot2 = newValue; addresses.2 = address
            case 3: slot3 = newValue; addresses.3 = address
            case 4: slot4 = newValue; addresses.4 = address
            default: preconditionFailure("wire-format slot \(slot) beyond PublicationFrames.capacity")
            }
        }
    }
}

/// Turns a publication into the bytes one wire format sends for it (a whole WebSocket frame).
/// The broker calls it once per publication per format that has subscribers, in slot order,
/// with the frames of the earlier slots already in ``PublicationContent/frames``.
public protocol PublicationEncoder: Sendable {
    /// The frame in a buffer of its own (replays of old publications, tests).
    func encode(_ content: borrowing PublicationContent) -> ByteBuffer

    /// The frame, written into the publishing topic's arena where the encoder can (a slice of
    /// a shared chunk instead of a buffer of its own); the topic calls this one.
    func encode(_ content: borrowing PublicationContent, in arena: inout FrameArena) -> ByteBuffer

    /// Where the payload's bytes sit, verbatim, in `frame` (what `encode` returned for
    /// `content`), so the publication can keep a slice of the frame instead of a copy of the
    /// payload; nil when they are not there as such (compressed frames).
    func payloadRange(in frame: ByteBuffer, of content: borrowing PublicationContent) -> Range<Int>?
}

extension PublicationEncoder {
    public func encode(_ content: borrowing PublicationContent, in arena: inout FrameArena) -> ByteBuffer { encode(content) }

    public func payloadRange(in frame: ByteBuffer, of content: borrowing PublicationContent) -> Range<Int>? { nil }

    /// The frame of an existing publication (replays, tests, benchmarks).
    public func encode(_ publication: Publication) -> ByteBuffer { encode(publication.content) }
}
