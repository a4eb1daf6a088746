import PubSubCore
import Testing

@Suite("Subject tree")
struct SubjectTreeTests {
    static let patterns = [
        "orders", "orders.eu", "orders.*", "orders.>", "*.eu", "*", ">", "a.*.c", "a.>", "*.*", "a.b.c", "orders.*.paris",
    ]
    static let topics = ["orders", "orders.eu", "orders.us", "orders.eu.paris", "a", "a.b", "a.b.c", "a.x.c", "x.eu", "a.b.c.d", "z"]

    /// Every pattern against every topic: the tree answers what the linear match does.
    @Test func agreesWithLinearMatching() throws {
        var tree = SubjectTree<String>()
        for pattern in Self.patterns {
            let inserted = tree.insert(try #require(TopicPattern(pattern)), pattern)
            #expect(inserted)
        }
        #expect(tree.count == Self.patterns.count)
        for topic in Self.topics {
            let expected = Set(Self.patterns.filter { TopicPattern($0)!.matches(topic) })
            #expect(tree.matches(topic) == expected, "\(topic)")
            #expect(tree.hasMatch(topic) == !expected.isEmpty, "\(topic)")
        }
    }

    @Test func removingPrunesAndKeepsTheRest() throws {
        var tree = SubjectTree<Int>()
        let star = try #require(TopicPattern("orders.*"))
        let rest = try #require(TopicPattern("orders.>"))
        let changed1 = tree.insert(star, 1)
        #expect(changed1)
        let changed2 = tree.insert(star, 1)
        #expect(!changed2, "a second insert of the same value changes nothing")
        let changed3 = tree.insert(star, 2)
        #expect(changed3)
        let changed4 = tree.insert(rest, 1)
        #expect(changed4)
        #expect(tree.matches("orders.eu") == [1, 2])
        let changed5 = tree.remove(star, 1)
        #expect(changed5)
        let changed6 = tree.remove(star, 1)
        #expect(!changed6)
        let changed7 = tree.remove(try #require(TopicPattern("orders.eu.*")), 1)
        #expect(!changed7, "a path that is not there")
        #expect(tree.matches("orders.eu") == [1, 2])
        let changed8 = tree.remove(rest, 1)
        #expect(changed8)
        #expect(tree.matches("orders.eu") == [2])
        #expect(tree.matches("orders.eu.paris").isEmpty)
        let changed9 = tree.remove(star, 2)
        #expect(changed9)
        #expect(tree.isEmpty)
        #expect(!tree.hasMatch("orders.eu"))
    }

    @Test func eachMatchingPatternCountsOnce() throws {
        var tree = SubjectTree<Int>()
        tree.insert(try #require(TopicPattern("orders.*")), 7)
        tree.insert(try #require(TopicPattern("*.eu")), 7)
        var visits = 0
        tree.forEachMatch("orders.eu") { _ in visits += 1 }
        #expect(visits == 2)
        #expect(tree.matches("orders.eu") == [7])
    }

    /// Names may hold empty tokens (`a..b`, `a.`): the tree answers as the linear match.
    @Test func emptyTokens() throws {
        var tree = SubjectTree<String>()
        for pattern in ["*.*", ">", "a.>", "a.*", "*.b", "a.*.b"] { tree.insert(try #require(TopicPattern(pattern)), pattern) }
        for topic in ["a..", ".", "a.", ".b", "a..b", "a.b", "..", "a...b"] {
            let expected = Set(["*.*", ">", "a.>", "a.*", "*.b", "a.*.b"].filter { TopicPattern($0)!.matches(topic) })
            #expect(tree.matches(topic) == expected, "\(topic)")
        }
        #expect(tree.matches("a.") == [">"], "an empty last token is not one more for `>`, nor a token for `*`")
    }

    /// Random patterns and topics over a small alphabet, so that they often meet.
    @Test func randomAgreement() throws {
        var generator = SystemRandomNumberGenerator()
        // Topics may hold empty tokens; patterns may not.
        let tokens = ["a", "b", "c", ""]
        func name(_ wild: Bool) -> String {
            let count = Int.random(in: 1...4, using: &generator)
            return (0..<count).map { index in
                guard wild else { return tokens.randomElement(using: &generator)! }
                if index == count - 1 && Bool.random(using: &generator) { return ">" }
                return Int.random(in: 0..<4, using: &generator) == 0 ? "*" : tokens.dropLast().randomElement(using: &generator)!
            }.joined(separator: ".")
        }
        var tree = SubjectTree<String>()
        var held: Set<String> = []
        for _ in 0..<200 {
            let text = name(true)
            let pattern = try #require(TopicPattern(text))
            if held.contains(text) && Bool.random(using: &generator) {
                let changed10 = tree.remove(pattern, text)
                #expect(changed10)
                held.remove(text)
            } else {
                let changed11 = tree.insert(pattern, text)
                #expect(changed11 == !held.contains(text))
                held.insert(text)
            }
            let topic = name(false)
            #expect(tree.matches(topic) == Set(held.filter { TopicPattern($0)!.matches(topic) }), "\(topic) in \(held)")
        }
        #expect(tree.count == held.count)
    }
}
