/// Validation of topic names and matching of AMQP-style topic patterns.
///
/// A topic is a dot-separated list of words (`user.created.eu`). A pattern may use `*` for
/// exactly one word and `#` for zero or more words (`user.*`, `audit.#`, `#.error`).
///
/// ```swift
/// let pattern = try TopicPattern("user.#")
/// pattern.matches("user.created.eu") // true
/// pattern.matches("users") // false
/// ```
public struct TopicPattern: Sendable, Hashable, CustomStringConvertible {
    /// The longest topic or pattern, in UTF-8 bytes (AMQP's short-string limit).
    public static let maximumLength = 255

    private enum Word: Hashable, Sendable {
        case literal(Substring)
        case one
        case any
    }

    /// The pattern as written.
    public let pattern: String
    private let words: [Word]
    /// True when the pattern has no wildcard, so it matches exactly one topic.
    public let isLiteral: Bool

    /// Parses a pattern.
    ///
    /// - Throws: ``MessagingError`` with code ``MessagingError/Code/invalidPattern`` when the
    ///   pattern is empty, too long, has an empty word, or mixes a wildcard into a word (`user.#x`).
    public init(_ pattern: String) throws {
        try Self.checkCharacters(pattern, kind: "pattern", code: .invalidPattern)
        var words: [Word] = []
        for word in pattern.split(separator: ".", omittingEmptySubsequences: false) {
            if word.isEmpty {
                throw MessagingError(.invalidPattern, "pattern '\(pattern)' has an empty word; words are separated by single dots")
            }
            if word == "*" {
                words.append(.one)
            } else if word == "#" {
                // `#.#` is the same as `#`; folding keeps matching linear.
                if words.last != .any { words.append(.any) }
            } else if word.contains("*") || word.contains("#") {
                throw MessagingError(.invalidPattern, "pattern '\(pattern)': a wildcard must be a whole word ('*' or '#'), not part of '\(word)'")
            } else {
                words.append(.literal(word))
            }
        }
        self.pattern = pattern
        self.words = words
        self.isLiteral = !words.contains { $0 == .one || $0 == .any }
    }

    public var description: String { pattern }

    /// How specific the pattern is, for router precedence: literal words count most, `*` less, `#` least.
    public var specificity: (literals: Int, singles: Int, multis: Int) {
        var literals = 0, singles = 0, multis = 0
        for word in words {
            switch word {
            case .literal: literals += 1
            case .one: singles += 1
            case .any: multis += 1
            }
        }
        return (literals, singles, multis)
    }

    /// Whether a topic matches the pattern.
    public func matches(_ topic: String) -> Bool {
        let topicWords = topic.split(separator: ".", omittingEmptySubsequences: false)
        return Self.match(words[...], topicWords[...])
    }

    private static func match(_ pattern: ArraySlice<Word>, _ topic: ArraySlice<Substring>) -> Bool {
        var p = pattern.startIndex
        var t = topic.startIndex
        // Position to resume from when the last `#` must swallow one more word.
        var backtrack: (pattern: Int, topic: Int)?
        while t < topic.endIndex || p < pattern.endIndex {
            if p < pattern.endIndex {
                switch pattern[p] {
                case .any:
                    backtrack = (p, t)
                    p += 1
                    continue
                case .one:
                    if t < topic.endIndex { p += 1; t += 1; continue }
                case .literal(let word):
                    if t < topic.endIndex, topic[t] == word { p += 1; t += 1; continue }
                }
            }
            guard let resume = backtrack, resume.topic < topic.endIndex else { return false }
            backtrack = (resume.pattern, resume.topic + 1)
            p = resume.pattern + 1
            t = resume.topic + 1
        }
        return true
    }

    /// Checks that a name is fit to publish on: non-empty, at most 255 UTF-8 bytes, no wildcard,
    /// no empty word, no control character.
    ///
    /// ```swift
    /// try TopicPattern.validateTopic("orders.created") // fine
    /// try TopicPattern.validateTopic("orders.*") // throws .invalidTopic
    /// ```
    public static func validateTopic(_ topic: String) throws {
        try checkCharacters(topic, kind: "topic", code: .invalidTopic)
        if topic.contains("*") || topic.contains("#") {
            throw MessagingError(.invalidTopic, "topic '\(topic)' contains a wildcard; wildcards belong in subscription patterns, not in published topics")
        }
        if topic.hasPrefix(".") || topic.hasSuffix(".") || topic.contains("..") {
            throw MessagingError(.invalidTopic, "topic '\(topic)' has an empty word; words are separated by single dots")
        }
    }

    /// Checks a queue or exchange name: non-empty, at most 255 UTF-8 bytes, no control character.
    public static func validateName(_ name: String, kind: String) throws {
        try checkCharacters(name, kind: kind, code: .invalidQueueName)
    }

    private static func checkCharacters(_ text: String, kind: String, code: MessagingError.Code) throws {
        if text.isEmpty {
            throw MessagingError(code, "the \(kind) is empty")
        }
        if text.utf8.count > maximumLength {
            throw MessagingError(code, "the \(kind) is \(text.utf8.count) bytes long; the limit is \(maximumLength) bytes")
        }
        if text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == " " }) {
            throw MessagingError(code, "the \(kind) '\(text.debugDescription.dropFirst().dropLast())' contains a space or a control character")
        }
    }
}
