/// Patterns over dot-separated topic names, held as NATS holds subscriptions (its sublist): a
/// level per token, each node's children by literal token, `*` and `>` among them. Matching a
/// topic walks one path per wildcard branch, never the whole set of patterns: the cost grows
/// with the topic's tokens and the wildcards along its way, not with how many patterns exist.
///
///     var tree = SubjectTree<Int>()
///     tree.insert(TopicPattern("orders.*")!, 1)
///     tree.insert(TopicPattern("orders.>")!, 2)
///     tree.matches("orders.eu")        // [1, 2]
///     tree.matches("orders.eu.paris")  // [2]
///
/// A value type: copy it to read while another copy changes (the hub keeps it under a lock).
public struct SubjectTree<Value: Hashable & Sendable>: Sendable {
    /// One level: the values of the patterns that end here, and the next tokens. `*` and `>`
    /// are keys like any token: topic names cannot hold them, so they never meet a literal.
    private struct Node: Sendable {
        var values: Set<Value> = []
        var children: [Substring: Node] = [:]

        var isEmpty: Bool { values.isEmpty && children.isEmpty }
    }

    private var root = Node()
    /// Patterns held (each value once per pattern it was inserted under).
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    /// Adds `value` under `pattern`; false if it was there already.
    @discardableResult
    public mutating func insert(_ pattern: TopicPattern, _ value: Value) -> Bool {
        let inserted = Self.insert(value, tokens: pattern.tokens[...], into: &root)
        if inserted { count += 1 }
        return inserted
    }

    private static func insert(_ value: Value, tokens: ArraySlice<Substring>, into node: inout Node) -> Bool {
        guard let token = tokens.first else { return node.values.insert(value).inserted }
        return insert(value, tokens: tokens.dropFirst(), into: &node.children[token, default: Node()])
    }

    /// Takes `value` out from under `pattern`, and the levels it leaves empty; false if it was
    /// not there.
    @discardableResult
    public mutating func remove(_ pattern: TopicPattern, _ value: Value) -> Bool {
        let removed = Self.remove(value, tokens: pattern.tokens[...], from: &root)
        if removed { count -= 1 }
        return removed
    }

    private static func remove(_ value: Value, tokens: ArraySlice<Substring>, from node: inout Node) -> Bool {
        guard let token = tokens.first else { return node.values.remove(value) != nil }
        guard node.children[token] != nil else { return false }
        let removed = remove(value, tokens: tokens.dropFirst(), from: &node.children[token]!)
        if node.children[token]!.isEmpty { node.children[token] = nil }
        return removed
    }

    /// Calls `body` with each value whose pattern matches `topic` (a value under several
    /// matching patterns, once per pattern).
    public func forEachMatch(_ topic: String, _ body: (Value) -> Void) {
        guard !root.children.isEmpty else { return }
        let tokens = topic.split(separator: ".", omittingEmptySubsequences: false)
        Self.visit(root, tokens: tokens[...], body)
    }

    private static func visit(_ node: Node, tokens: ArraySlice<Substring>, _ body: (Value) -> Void) {
        guard let token = tokens.first else {
            for value in node.values { body(value) }
            return
        }
        // As TopicPattern.matches: `>` takes what is left unless that is one empty token
        // (names may hold empty tokens, `a..b`), and no other token matches an empty one.
        if let rest = node.children[">"], !(token.isEmpty && tokens.count == 1) {
            for value in rest.values { body(value) }
        }
        guard !token.isEmpty else { return }
        let next = tokens.dropFirst()
        if let one = node.children["*"] { visit(one, tokens: next, body) }
        if let literal = node.children[token] { visit(literal, tokens: next, body) }
    }

    /// The values whose patterns match `topic`, each once.
    public func matches(_ topic: String) -> Set<Value> {
        var found: Set<Value> = []
        forEachMatch(topic) { found.insert($0) }
        return found
    }

    /// Whether any pattern matches `topic`.
    public func hasMatch(_ topic: String) -> Bool {
        var found = false
        forEachMatch(topic) { _ in found = true }
        return found
    }
}
