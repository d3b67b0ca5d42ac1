import Jadugar
import Testing

@Suite("Topic patterns")
struct TopicPatternTests {
    @Test("AMQP wildcard matching", arguments: [
        ("user.created", "user.created", true),
        ("user.*", "user.created", true),
        ("user.*", "user.created.eu", false),
        ("user.*", "user", false),
        ("user.#", "user", true),
        ("user.#", "user.created.eu", true),
        ("#", "anything.at.all", true),
        ("#", "x", true),
        ("#.error", "db.write.error", true),
        ("#.error", "error", true),
        ("#.error", "db.error.retry", false),
        ("*.*.error", "db.write.error", true),
        ("*.*.error", "db.error", false),
        ("a.#.z", "a.z", true),
        ("a.#.z", "a.b.c.z", true),
        ("a.#.z", "a.b.c.y", false),
        ("a.#.#.z", "a.b.z", true),
        ("#.b.#", "a.b.c", true),
        ("#.b.#", "a.c", false),
        ("*", "one", true),
        ("*", "one.two", false),
        ("grüße.*", "grüße.welt", true),
    ])
    func matching(pattern: String, topic: String, expected: Bool) throws {
        #expect(try TopicPattern(pattern).matches(topic) == expected)
    }

    @Test("malformed patterns are refused", arguments: ["", "user..x", ".user", "user.", "user.#x", "us*r", "a b", String(repeating: "a", count: 256)])
    func badPatterns(pattern: String) {
        #expect(throws: MessagingError.self) { try TopicPattern(pattern) }
    }

    @Test("topics must be literal, non-empty and short", arguments: ["", "a.*", "a.#", "a..b", ".a", "a.", "tab\there", String(repeating: "x", count: 300)])
    func badTopics(topic: String) {
        #expect(throws: MessagingError.self) { try TopicPattern.validateTopic(topic) }
    }

    @Test("literal patterns are recognised")
    func literal() throws {
        #expect(try TopicPattern("a.b").isLiteral)
        #expect(try !TopicPattern("a.*").isLiteral)
        #expect(try !TopicPattern("#").isLiteral)
    }

    @Test("property: a topic always matches itself, '#', and its own words with '*'")
    func properties() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcxyz")
        for _ in 0..<500 {
            let count = Int.random(in: 1...6, using: &generator)
            let words = (0..<count).map { _ in String((0..<Int.random(in: 1...4, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }) }
            let topic = words.joined(separator: ".")
            #expect(try TopicPattern(topic).matches(topic))
            #expect(try TopicPattern("#").matches(topic))
            #expect(try TopicPattern(Array(repeating: "*", count: count).joined(separator: ".")).matches(topic))
            #expect(try !TopicPattern(Array(repeating: "*", count: count + 1).joined(separator: ".")).matches(topic))
            let prefix = words.prefix(Int.random(in: 0...count, using: &generator)).joined(separator: ".")
            #expect(try TopicPattern(prefix.isEmpty ? "#" : prefix + ".#").matches(topic))
        }
    }
}
