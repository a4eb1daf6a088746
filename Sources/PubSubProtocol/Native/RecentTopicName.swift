#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `String` of a topic name decoded again and again: each thread keeps the last one it
/// built (in its ``PerThread`` slot) and hands it out again while frames keep naming it, as a
/// publisher's frames do. The name it keeps was validated when it was built: bytes that match
/// it need no check again.
///
/// A long name (over 15 bytes) is an allocation, a copy and, when the publish is done, a free;
/// handed out again it is a retain, and the topic it is compared with may well share its
/// storage. A short one is held inline in its `String`, but building it (the bytes checked
/// against the name rules, then `String(unsafeUninitializedCapacity:)`) still costs far more
/// than a compare: its bytes are kept beside it as two words, and a frame's name is compared
/// with them in two.
enum RecentTopicName {
    /// The most UTF-8 bytes a `String` holds inline on 64-bit platforms.
    static let inlineBytes = 15

    /// The name this thread keeps when `raw` (a string value's bytes between its quotes, as
    /// written) spells it; nil for any other name.
    @inline(__always)
    static func matching(_ raw: UnsafeRawBufferPointer) -> String? {
        let last = PerThread.current
        guard raw.count == last.pointee.topicNameCount, raw.count > 0 else { return nil }
        if raw.count <= inlineBytes {
            guard words(raw) == last.pointee.topicNameWords else { return nil }
            return last.pointee.topicName
        }
        guard let name = last.pointee.topicName, spells(name, raw) else { return nil }
        return name
    }

    /// A `String` of `text`, a validated topic name, kept for the next frames.
    @inline(__always)
    static func string(_ text: UnsafeRawBufferPointer) -> String {
        let name = JSONScanner.asciiString(text)
        let last = PerThread.current
        last.pointee.topicName = name
        last.pointee.topicNameCount = text.count
        last.pointee.topicNameWords = text.count <= inlineBytes ? words(text) : (0, 0)
        return name
    }

    /// A short name's bytes (1 to 15) in two words, zero after them.
    @inline(__always)
    private static func words(_ raw: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { ByteSink.copy(to: $0.baseAddress!, from: raw.baseAddress!, count: raw.count) }
        return words
    }

    /// Whether `name`'s UTF-8 is the bytes `text`.
    private static func spells(_ name: String, _ text: UnsafeRawBufferPointer) -> Bool {
        guard name.utf8.count == text.count else { return false }
        var name = name
        return name.withUTF8 { memcmp($0.baseAddress!, text.baseAddress!, text.count) == 0 }
    }
}
