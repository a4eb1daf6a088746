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
    public var payload: ByteBuffer

    public init(id: String?, payload: ByteBuffer) {
        self.id = id
        self.payload = payload
    }
}

/// One published message, shared by reference between the topic's history and every
/// subscriber queue it is fanned out to.
///
/// Its frames (one per wire format that had subscribers when it was published) are encoded
/// once by the topic before the publication is shared; they are never written after that.
public final class Publication: @unchecked Sendable {
    public let topic: String
    public let seq: UInt64
    public let id: MessageID
    /// Set once by the topic before the publication is shared: a slice of its encoded frame
    /// where the payload sits verbatim, else its own copy.
    public internal(set) var payload: ByteBuffer
    public let timestampMillis: Int64
    /// Per-topic drop counter, so a drop on any queue is charged to the right topic.
    let topicCounters: TopicCounters
    /// Encoded frames by wire-format slot; `nil` where no subscriber of that format existed.
    public internal(set) var frames = PublicationFrames()

    init(topic: String, seq: UInt64, id: MessageID, payload: ByteBuffer, timestampMillis: Int64, topicCounters: TopicCounters) {
        self.topic = topic
        self.seq = seq
        self.id = id
        self.payload = payload
        self.timestampMillis = timestampMillis
        self.topicCounters = topicCounters
    }

    /// The same message and frames in a new object, so a replay can add a frame in a format
    /// nobody had when it was published without touching the shared publication.
    func copy() -> Publication {
        let copy = Publication(topic: topic, seq: seq, id: id, payload: payload, timestampMillis: timestampMillis, topicCounters: topicCounters)
        copy.frames = frames
        return copy
    }

    /// Builds a publication outside a broker, for encoders' tests and benchmarks (with `frames`
    /// already encoded, for queue benchmarks).
    public convenience init(
        topic: String, seq: UInt64, id: String, payload: ByteBuffer, timestampMillis: Int64, frames: PublicationFrames = PublicationFrames()
    ) {
        self.init(topic: topic, seq: seq, id: MessageID(id), payload: payload, timestampMillis: timestampMillis, topicCounters: TopicCounters())
        self.frames = frames
    }
}

/// A publication's frames by wire-format slot, stored inline (no array to allocate per
/// publication). A broker has at most ``capacity`` formats.
public struct PublicationFrames: Sendable {
    public static let capacity = 6
    private var slot0, slot1, slot2, slot3, slot4, slot5: ByteBuffer?

    public init() {}

    /// Every slot's byte count (0 where there is none), read without copying (retaining) the
    /// frames: the topic reads it once per publish, then once per subscriber.
    public var byteCounts: FrameByteCounts {
        FrameByteCounts(
            counts: (
                slot0?.readableBytes ?? 0, slot1?.readableBytes ?? 0, slot2?.readableBytes ?? 0,
                slot3?.readableBytes ?? 0, slot4?.readableBytes ?? 0, slot5?.readableBytes ?? 0
            )
        )
    }

    public subscript(slot: Int) -> ByteBuffer? {
        get {
            switch slot {
            case 0: slot0
            case 1: slot1
            case 2: slot2
            case 3: slot3
            case 4: slot4
            case 5: slot5
            default: nil
            }
        }
        set {
            switch slot {
            case 0: slot0 = newValue
            case 1: slot1 = newValue
            case 2: slot2 = newValue
            case 3: slot3 = newValue
            case 4: slot4 = newValue
            case 5: slot5 = newValue
            default: preconditionFailure("wire-format slot \(slot) beyond PublicationFrames.capacity")
            }
        }
    }
}

/// The byte count of a publication's frame in each wire-format slot (0 where there is none).
public struct FrameByteCounts: Sendable {
    let counts: (Int, Int, Int, Int, Int, Int)

    @inline(__always)
    public subscript(slot: Int) -> Int {
        switch slot {
        case 0: counts.0
        case 1: counts.1
        case 2: counts.2
        case 3: counts.3
        case 4: counts.4
        case 5: counts.5
        default: 0
        }
    }
}

/// Turns a publication into the bytes one wire format sends for it (a whole WebSocket frame).
/// The broker calls it once per publication per format that has subscribers, in slot order,
/// with the frames of the earlier slots already in ``Publication/frames``.
public protocol PublicationEncoder: Sendable {
    /// The frame in a buffer of its own (replays of old publications, tests).
    func encode(_ publication: Publication) -> ByteBuffer

    /// The frame, written into the publishing topic's arena where the encoder can (a slice of
    /// a shared chunk instead of a buffer of its own); the topic calls this one.
    func encode(_ publication: Publication, in arena: inout FrameArena) -> ByteBuffer

    /// Where the payload's bytes sit, verbatim, in `frame` (what `encode` returned for
    /// `publication`), so the publication can keep a slice of the frame instead of a copy of
    /// the payload; nil when they are not there as such (compressed frames).
    func payloadRange(in frame: ByteBuffer, of publication: Publication) -> Range<Int>?
}

extension PublicationEncoder {
    public func encode(_ publication: Publication, in arena: inout FrameArena) -> ByteBuffer { encode(publication) }

    public func payloadRange(in frame: ByteBuffer, of publication: Publication) -> Range<Int>? { nil }
}
