/// A topic name or a pattern over names' dot-separated tokens (SPEC 9, as NATS subjects):
/// `orders` matches that topic only, `*` matches exactly one token, and `>` as the last
/// token matches one or more.
///
///     TopicPattern("orders.*")!.matches("orders.eu")       // true
///     TopicPattern("orders.>")!.matches("orders.eu.paris") // true
///     TopicPattern(">")!.matches("anything")               // true
public struct TopicPattern: Sendable, Equatable, CustomStringConvertible {
    public let description: String
    /// The dot-separated tokens, `*` and `>` included.
    let tokens: [Substring]

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

extension TopicPattern {
    /// Whether `text` has a wildcard token (`*`, or `>` at the end): a pattern, not a name.
    public static func isPattern(_ text: String) -> Bool {
        text.split(separator: ".", omittingEmptySubsequences: false).contains { $0 == "*" || $0 == ">" }
    }

    /// The pattern `text` is; BAD_REQUEST saying why when it is not one.
    public static func validate(_ text: String) throws(PubSubError) -> TopicPattern {
        guard let pattern = TopicPattern(text) else {
            throw .badRequest("'\(text)' is not a valid pattern: '*' stands for one whole token, '>' for the last one or more")
        }
        return pattern
    }

    /// Whether this has a wildcard token (else it matches one topic, its own name).
    public var isPattern: Bool { tokens.contains { $0 == "*" || $0 == ">" } }

    /// What every topic it matches begins with: the tokens before the first wildcard, each
    /// followed by its dot (`orders.` for `orders.*`, empty for `>`).
    public var literalPrefix: String {
        guard let first = tokens.firstIndex(where: { $0 == "*" || $0 == ">" }) else { return description }
        return tokens[..<first].map { "\($0)." }.joined()
    }

    /// Whether every topic `other` matches, this matches too (as NATS checks a subscription
    /// against a permission): token by token, `>` covers whatever is left, `*` any one
    /// token but not `>`, a literal only itself.
    public func covers(_ other: TopicPattern) -> Bool {
        for (index, token) in tokens.enumerated() {
            if token == ">" { return index < other.tokens.count }
            guard index < other.tokens.count else { return false }
            let theirs = other.tokens[index]
            if theirs == ">" { return false }
            if token != "*" && token != theirs { return false }
        }
        return tokens.count == other.tokens.count
    }
}
