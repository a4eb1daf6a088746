import PubSubCore
import Testing

@Suite("Topic patterns")
struct TopicPatternTests {
    @Test(arguments: [
        ("orders", "orders", true), ("orders", "orders.eu", false), ("orders", "order", false),
        ("orders.*", "orders.eu", true), ("orders.*", "orders", false), ("orders.*", "orders.eu.paris", false),
        ("orders.>", "orders.eu", true), ("orders.>", "orders.eu.paris", true), ("orders.>", "orders", false),
        (">", "anything", true), (">", "a.b.c", true), ("*", "a", true), ("*", "a.b", false),
        ("*.eu", "orders.eu", true), ("*.eu", "orders.us", false), ("a.*.c", "a.b.c", true), ("a.*.c", "a..c", false),
        ("orders.*", "orders.", false),
    ])
    func matching(_ pattern: String, _ topic: String, _ expected: Bool) throws {
        let parsed = try #require(TopicPattern(pattern))
        #expect(parsed.matches(topic) == expected, "\(pattern) ~ \(topic)")
    }

    @Test(arguments: ["", ".", "a..b", "a.>.b", "a*", "or>ders", "bad name", ">.a", "a."])
    func invalid(_ text: String) {
        #expect(TopicPattern(text) == nil, "\(text)")
    }
}

@Suite("Topic pattern coverage")
struct TopicPatternCoverageTests {
    @Test(arguments: [
        (">", "orders.*", true), (">", ">", true), ("orders.>", "orders.*", true), ("orders.>", "orders.>", true),
        ("orders.>", "orders.*.paris", true), ("orders.>", ">", false), ("orders.>", "orders", false),
        ("orders.*", "orders.*", true), ("orders.*", "orders.eu", true), ("orders.*", "orders.>", false),
        ("orders.*", "orders.*.x", false), ("orders.eu", "orders.*", false), ("*.eu", "orders.*", false),
        ("*.*", "orders.*", true), ("*", ">", false), ("orders.*.paris", "orders.*.*", false),
    ])
    func covers(_ granted: String, _ requested: String, _ expected: Bool) throws {
        let grant = try #require(TopicPattern(granted))
        let request = try #require(TopicPattern(requested))
        #expect(grant.covers(request) == expected, "\(granted) ⊇ \(requested)")
    }

    @Test func prefixes() throws {
        #expect(try #require(TopicPattern("orders.*")).literalPrefix == "orders.")
        #expect(try #require(TopicPattern("a.b.>")).literalPrefix == "a.b.")
        #expect(try #require(TopicPattern(">")).literalPrefix == "")
        #expect(try #require(TopicPattern("*.eu")).literalPrefix == "")
        #expect(TopicPattern.isPattern("a.*") && TopicPattern.isPattern(">") && !TopicPattern.isPattern("a.b*"))
    }
}
