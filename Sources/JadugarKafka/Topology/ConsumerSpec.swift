import Foundation
import Jadugar

/// What a queue's Kafka consumer reads and which records it delivers.
///
/// A queue `q` reads its own topic `q` (what `send(_:toQueue:)` and `createQueue` give it), its
/// retry topic `q.retry`, and the topics of its bindings: a literal pattern is a topic name, a
/// wildcard pattern a `^`-prefixed regular expression subscription. A record is delivered when it
/// is on `q`; or on `q.retry` and retried for `q`; or on a bound topic, published to an exchange
/// the binding names (records without an exchange header count as the default exchange; records
/// sent straight to a queue never match a binding).
struct ConsumerSpec: Sendable {
    var queue: String
    /// Exclusive queues and group-less subscriptions: no group offsets; bound topics are read from
    /// their end, the own topic from its beginning.
    var isPrivate: Bool
    var hasOwnTopic: Bool
    var bindings: [KafkaBinding]
    var defaultExchange: String
    var deadLetter: DeadLetterTarget?
    /// When a private consumer started, for its timestamp filter.
    var startedAt: Date
    var startTolerance: Duration
    /// ``KafkaConfiguration/topicPrefix``.
    var prefix: String

    /// The Kafka topic of the queue's own topic.
    var ownKafkaTopic: String { prefix + queue }

    /// The Jadugar name of a Kafka topic, or `nil` when it is outside the prefix.
    func jadugarTopic(_ kafkaTopic: String) -> String? {
        guard kafkaTopic.hasPrefix(prefix) else { return nil }
        return String(kafkaTopic.dropFirst(prefix.count))
    }

    /// The retry topic of a durable queue.
    var retryTopic: String? { isPrivate ? nil : Self.retryTopic(for: queue) }

    static func retryTopic(for queue: String) -> String { "\(queue).retry" }

    /// Kafka topics read by name.
    var literalTopics: [String] { jadugarLiteralTopics.map { prefix + $0 } }

    /// Topics read by name, as Jadugar names them.
    var jadugarLiteralTopics: [String] {
        var topics: [String] = []
        if hasOwnTopic { topics.append(queue) }
        if let retryTopic { topics.append(retryTopic) }
        for binding in bindings where binding.pattern.isLiteral && !topics.contains(binding.pattern.pattern) {
            topics.append(binding.pattern.pattern)
        }
        return topics
    }

    /// `^`-prefixed regular expressions for wildcard bindings.
    var regexes: [String] {
        var seen = Set<String>()
        return bindings.filter { !$0.pattern.isLiteral }.map { Self.regex(for: $0.pattern.pattern, prefix: prefix) }.filter { seen.insert($0).inserted }
    }

    /// Whether the consumer joins a group (durable queues, and private ones with wildcard bindings,
    /// which need the group protocol to follow new topics); otherwise it assigns partitions itself.
    var usesGroup: Bool { !isPrivate || bindings.contains { !$0.pattern.isLiteral } }

    /// The consumer group id.
    var groupID: String { prefix + queue }

    /// Whether the consumer delivers a decoded record that arrived on `topic` (its Jadugar name).
    func accepts(_ record: DecodedRecord, topic: String) -> Bool {
        if topic == queue, hasOwnTopic { return true }
        if let retryTopic, topic == retryTopic { return record.retryFor == queue }
        if record.retryFor != nil || topic.hasPrefix("__") { return false }
        let exchange = record.exchange ?? defaultExchange
        if exchange.isEmpty { return false }
        if isPrivate {
            let limit = startedAt.addingTimeInterval(-Double(startTolerance.wholeMilliseconds) / 1000)
            if record.message.timestamp < limit { return false }
        }
        return bindings.contains { $0.exchange == exchange && $0.pattern.matches(topic) }
    }

    /// A POSIX extended regular expression, `^`-prefixed as librdkafka requires, that matches exactly
    /// the topics an AMQP-style pattern matches: `*` one word, `#` zero or more words.
    static func regex(for pattern: String, prefix: String = "") -> String {
        let words = pattern.split(separator: ".", omittingEmptySubsequences: false).reduce(into: [Substring]()) { words, word in
            if word == "#", words.last == "#" { return }
            words.append(word)
        }
        if words == ["#"] { return "^\(escape(prefix[...])).*$" }
        var regex = "^" + escape(prefix[...])
        var needsSeparator = false
        for (index, word) in words.enumerated() {
            switch word {
            case "#":
                if index == 0 {
                    regex += "(.*\\.)?"
                    needsSeparator = false
                } else {
                    regex += "(\\..*)?"
                    needsSeparator = true
                }
                continue
            case "*":
                regex += (needsSeparator ? "\\." : "") + "[^.]+"
            default:
                regex += (needsSeparator ? "\\." : "") + escape(word)
            }
            needsSeparator = true
        }
        return regex + "$"
    }

    private static func escape(_ word: Substring) -> String {
        var escaped = ""
        for character in word {
            if "\\^$.|?*+()[]{}".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
