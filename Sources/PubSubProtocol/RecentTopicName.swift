#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `String` of a topic name decoded again and again: each thread keeps the last long one it
/// built (in its ``PerThread`` slot) and hands it out again while frames keep naming it, as a
/// publisher's frames do. The name it keeps was validated when it was built: bytes that match
/// it need no check again.
///
/// A name of up to 15 bytes is a "small" string, held inline: building one costs less than
/// looking here. A longer one is an allocation, a copy and, when the publish is done, a free;
/// handed out again it is a retain, and the topic it is compared with may well share its
/// storage (a topic keeps the name it was first published or subscribed to with).
enum RecentTopicName {
    /// The most UTF-8 bytes a `String` holds inline on 64-bit platforms.
    static let inlineBytes = 15

    /// The name this thread keeps when `raw` (a string value's bytes between its quotes, as
    /// written) spells it; nil for short values and any other name.
    @inline(__always)
    static func matching(_ raw: UnsafeRawBufferPointer) -> String? {
        guard raw.count > inlineBytes else { return nil }
        return kept(matching: raw)
    }

    /// A `String` of `text`, a validated topic name; kept for the next frames when long.
    @inline(__always)
    static func string(_ text: UnsafeRawBufferPointer) -> String {
        let name = JSONScanner.asciiString(text)
        if text.count > inlineBytes { PerThread.current.pointee.topicName = name }
        return name
    }

    private static func kept(matching raw: UnsafeRawBufferPointer) -> String? {
        guard let name = PerThread.current.pointee.topicName, spells(name, raw) else { return nil }
        return name
    }

    /// Whether `name`'s UTF-8 is the bytes `text`.
    private static func spells(_ name: String, _ text: UnsafeRawBufferPointer) -> Bool {
        guard name.utf8.count == text.count else { return false }
        var name = name
        return name.withUTF8 { memcmp($0.baseAddress!, text.baseAddress!, text.count) == 0 }
    }
}
