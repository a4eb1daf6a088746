import PubSubCore

/// The native `event` frame written at its exact size, in one pass of stores: every part's
/// length is known before the first byte is written (the topic's, the seq's digits, the id's,
/// the payload's, the fixed literals'), so the frame header goes first and nothing moves, and no
/// writer state (commas, a sink that may grow) is kept per part. It is the frame every
/// publication of a native subscriber's topic gets once; ``JSONWriter`` writes the same bytes
/// where it cannot be used (an id that needs escaping).
///
///     if let length = NativeEventFrame.textLength(content) {
///         let frameLength = NativeEventFrame.write(content, textLength: length, to: region.baseAddress!)
///     }
enum NativeEventFrame {
    private static let opening: StaticString = #"{"type":"event","topic":""#
    private static let afterTopic: StaticString = #"","seq":"#
    private static let afterSeq: StaticString = #","message":{"id":"#
    private static let afterID: StaticString = #","payload":"#
    private static let afterPayload: StaticString = #"},"ts":""#
    private static let closing: StaticString = #""}"#
    /// The literals' bytes and the timestamp's 24 with its quotes (in the literals).
    private static let fixedLength =
        opening.utf8CodeUnitCount + afterTopic.utf8CodeUnitCount + afterSeq.utf8CodeUnitCount
        + afterID.utf8CodeUnitCount + afterPayload.utf8CodeUnitCount + closing.utf8CodeUnitCount + 24

    /// The bytes of the event's JSON text; nil when its id would need escaping (a client's id
    /// with a quote, backslash or control character), which ``JSONWriter`` handles.
    static func textLength(_ publication: borrowing PublicationContent) -> Int? {
        let idLength: Int
        if publication.id.isGenerated {
            idLength = 38
        } else {
            guard let plain = publication.id.withUTF8({ $0.contains(where: JSONWriter.needsEscaping) ? nil : $0.count }) else { return nil }
            idLength = plain + 2
        }
        return fixedLength + publication.topic.utf8.count + JSONWriter.decimalCount(publication.seq) + idLength
            + publication.payload.readableBytes
    }

    /// The bytes of the whole frame: ``textLength(_:)``'s and its header's.
    @inline(__always)
    static func frameLength(textLength: Int) -> Int {
        WebSocketFraming.headerSize(length: textLength) + textLength
    }

    /// Writes the whole frame (header and the `textLength` bytes ``textLength(_:)`` gave) at
    /// `base`, which has room for ``frameLength(textLength:)`` bytes; returns that length.
    static func write(_ publication: borrowing PublicationContent, textLength: Int, to base: UnsafeMutableRawPointer) -> Int {
        let header = WebSocketFraming.writeHeader(
            first: WebSocketFraming.text, length: textLength,
            to: UnsafeMutableRawBufferPointer(start: base, count: WebSocketFraming.maxHeaderSize)
        )
        // Each part returns where the next one starts. No closure captures a `var`: one that
        // did (the position, written through by every part) was a heap box per frame.
        var out = put(opening, at: base + header)
        // Topic names are checked to need no escaping when they are made.
        let topicAt = out
        out = ByteSink.withBytes(of: publication.topic) { put($0, at: topicAt) }
        out = put(afterTopic, at: out)
        let digits = JSONWriter.decimalCount(publication.seq)
        JSONWriter.storeDecimal(publication.seq, count: digits, to: out)
        out = put(afterSeq, at: out + digits)
        out.storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
        let idAt = out + 1
        if publication.id.writeGenerated(to: idAt) {
            out = idAt + 36
        } else {
            out = publication.id.withUTF8 { put($0, at: idAt) }
        }
        out.storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
        out = put(afterID, at: out + 1)
        let payloadAt = out
        out = publication.payload.withUnsafeReadableBytes { put($0, at: payloadAt) }
        let timestampAt = put(afterPayload, at: out)
        out = Timestamp.withISO8601(millis: publication.timestampMillis) { put($0, at: timestampAt) }
        out = put(closing, at: out)
        return out - base
    }

    /// Copies `bytes` to `destination`; returns the address after them.
    @inline(__always)
    private static func put(_ bytes: UnsafeRawBufferPointer, at destination: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return destination }
        ByteSink.copy(to: destination, from: source, count: bytes.count)
        return destination + bytes.count
    }

    @inline(__always)
    private static func put(_ literal: StaticString, at destination: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer {
        put(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount), at: destination)
    }
}
