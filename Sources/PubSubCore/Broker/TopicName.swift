/// Topic name rules (SPEC 1): 1 to 255 characters of `[A-Za-z0-9._-]`.
///
///     try TopicName.validate("orders.eu-1")   // ok
///     try TopicName.validate("bad name")      // throws BAD_REQUEST
public enum TopicName {
    public static let maxLength = 255

    public static func validate(_ name: String) throws(PubSubError) {
        let utf8 = name.utf8
        guard !utf8.isEmpty else {
            throw .badRequest("topic name must not be empty")
        }
        guard utf8.count <= maxLength else {
            throw .badRequest("topic name is \(utf8.count) characters long; the limit is \(maxLength)")
        }
        let allowed = utf8.withContiguousStorageIfAvailable { $0.allSatisfy(isAllowed) } ?? utf8.allSatisfy(isAllowed)
        if !allowed {
            if utf8.contains(where: { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: ">") }) {
                throw .badRequest("'\(name)' is a pattern, not a topic name: only subscribe and unsubscribe take one")
            }
            throw .badRequest("topic name '\(name)' may only contain A-Z, a-z, 0-9, '.', '_' and '-'")
        }
    }

    @inline(__always)
    @inlinable
    public static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
