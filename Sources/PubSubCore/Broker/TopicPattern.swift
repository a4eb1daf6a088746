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

    /// Nil for a text that is not a name or a pattern: an empty token, a character names do
    /// not allow, or `>` before the end.
    public init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= TopicName.maxLength else { return nil }
        let tokens = text.split(separator: ".", omittingEmptySubsequences: false)
        for (index, token) in tokens.enumerated() where token != "*" && !(token == ">" && index == tokens.count - 1) {
            guard !token.isEmpty, token.utf8.allSatisfy(TopicName.isAllowed) else { return nil }
        }
        self.description = text
        self.tokens = tokens
    }

    /// Whether `topic` is this name or matches this pattern.
    public func matches(_ topic: String) -> Bool {
        let parts = topic.split(separator: ".", omittingEmptySubsequences: false)
        for (index, token) in tokens.enumerated() {
            // One or more tokens left: what follows this position is not empty.
            if token == ">" { return index < parts.count && !(index == parts.count - 1 && parts[index].isEmpty) }
            guard index < parts.count, token == "*" ? !parts[index].isEmpty : parts[index] == token else { return false }
        }
        return parts.count == tokens.count
    }
}
