/// A topic name or a pattern over names' dot-separated tokens (SPEC 9, as NATS subjects):
/// `orders` matches that topic only, `*` matches exactly one token, and `>` as the last
/// token matches one or more.
///
///     TopicPattern("orders.*")!.matches("orders.eu")       // true
///     TopicPattern("orders.>")!.matches("orders.eu.paris") // true
///     TopicPattern(">")!.matches("anything")               // true
public struct TopicPattern: Sendable, Equatable, CustomStringConvertible {
    public let description: String
    private let tokens: [Substring]

    /// Nil for a text that is not a name or a pattern: empty tokens, a character names do
    /// not allow, or `>` before the end.
    public init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= TopicName.maxLength else { return nil }
        let tokens = text.split(separator: ".", omittingEmptySubsequences: false)
        for (index, token) in tokens.enumerated() {
            guard !token.isEmpty else { return nil }
            if token == "*" { continue }
            if token == ">" {
                guard index == tokens.count - 1 else { return nil }
                continue
            }
            guard token.utf8.allSatisfy({ TopicName.isAllowed($0) && $0 != UInt8(ascii: ".") }) else { return nil }
            if token.contains("*") || token.contains(">") { return nil }
        }
        self.description = text
        self.tokens = tokens
    }

    /// Whether `topic` is this name or matches this pattern.
    public func matches(_ topic: String) -> Bool {
        var remaining = Substring(topic)
        for (index, token) in tokens.enumerated() {
            if token == ">" { return !remaining.isEmpty }
            let next: Substring
            if let dot = remaining.firstIndex(of: ".") {
                next = remaining[..<dot]
                remaining = remaining[remaining.index(after: dot)...]
                // A trailing dot leaves an empty last token, which nothing matches.
                if remaining.isEmpty && index == tokens.count - 1 { return false }
            } else {
                guard !remaining.isEmpty || index == 0 else { return false }
                next = remaining
                remaining = ""
                guard index == tokens.count - 1 else { return false }
                return token == "*" ? !next.isEmpty : next == token
            }
            guard token == "*" ? !next.isEmpty : next == token else { return false }
        }
        return false
    }
}
