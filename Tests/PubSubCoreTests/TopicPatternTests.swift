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
