import Jadugar

extension RedisBroker {
    /// What the ephemeral (pub/sub) path guarantees: wildcard routing and nothing more. At most
    /// once: a message is not stored, reaches only subscribers listening at that moment, and is
    /// lost if a connection drops; it is never redelivered, delayed, expired or dead-lettered.
    ///
    /// ```swift
    /// RedisBroker.ephemeralCapabilities.supports(.redelivery) // false
    /// ```
    public static let ephemeralCapabilities = BrokerCapabilities(
        features: [.wildcardRouting, ephemeralFanout],
        emulated: [.wildcardRouting],
        ordering: .none
    )

    /// Publishes a message to the topic's pub/sub channel (`PUBLISH <prefix>ps:<topic>`), at most
    /// once: only subscribers listening now receive it. Returns how many Redis subscriptions
    /// received it (a subscriber's pattern may still filter it out).
    ///
    /// The message travels as one RESP array of the envelope's fields (see `docs/redis.md`).
    ///
    /// ```swift
    /// let listeners = try await broker.publishEphemeral(Message(topic: "cache.invalidate", string: "user:1"))
    /// ```
    ///
    /// - Throws: ``MessagingError``: `invalidTopic`, `payloadTooLarge`, `notConnected`, or Redis's refusal.
    @discardableResult
    public func publishEphemeral(_ message: Message) async throws -> Int {
        let session = try requireSession("publish")
        try TopicPattern.validateTopic(message.topic)
        if message.payload.count > configuration.maxPayloadBytes {
            throw MessagingError(.payloadTooLarge, "the payload of message \(message.id) is \(message.payload.count) bytes; the Redis adapter accepts at most \(configuration.maxPayloadBytes)")
        }
        var command = RedisCommand(capacity: message.payload.count + 256)
        command.append("PUBLISH")
        command.append(session.keys.channel(message.topic))
        command.append(RedisEnvelope.frame(message))
        return try await session.control.run(command).int ?? 0
    }

    /// Subscribes to a topic pattern on pub/sub (`PSUBSCRIBE`), at most once: no queue, no
    /// acknowledgement, no redelivery. Deliveries need no settling (`ack()` does nothing;
    /// `nack` and `reject` throw ``MessagingError/Code/unsupported``).
    ///
    /// ```swift
    /// let stream = try await broker.subscribeEphemeral("cache.#")
    /// for try await delivery in stream { invalidate(delivery.message) }
    /// ```
    ///
    /// - Parameters:
    ///   - pattern: A topic pattern (`*` one word, `#` zero or more).
    ///   - bufferLimit: The most messages held for a slow reader; older ones are dropped (and a
    ///     ``BrokerEvent/Kind/dropped`` event emitted). Default: 10,000.
    /// - Throws: ``MessagingError``: `invalidPattern`, `notConnected`, or a connection failure.
    public func subscribeEphemeral(_ pattern: String, bufferLimit: Int = 10_000) async throws -> DeliveryStream {
        let session = try requireSession("subscribe")
        let topicPattern = try TopicPattern(pattern)
        let subscriber = RedisEphemeralSubscriber(
            pattern: topicPattern, glob: session.keys.prefix.globEscaped + "ps:" + Self.glob(for: pattern),
            bufferLimit: max(1, bufferLimit), session: session
        ) { [weak self] subscriber in
            self?.removeEphemeral(subscriber)
        }
        try addEphemeral(subscriber)
        do {
            try await subscriber.start()
        } catch {
            removeEphemeral(subscriber)
            throw error
        }
        return DeliveryStream(queue: "ps:\(pattern)", source: subscriber)
    }

    /// A Redis glob that matches at least every topic the pattern matches: the literal words
    /// before the first wildcard, then `*` (Redis's `*` also spans dots, so the subscriber
    /// filters with the exact pattern).
    static func glob(for pattern: String) -> String {
        var literal: [String] = []
        for word in pattern.split(separator: ".", omittingEmptySubsequences: false) {
            if word == "*" || word == "#" {
                return (literal.isEmpty ? "" : literal.joined(separator: ".").globEscaped + (word == "#" ? "" : ".")) + "*"
            }
            literal.append(String(word))
        }
        return pattern.globEscaped
    }
}

extension String {
    /// The text with Redis glob metacharacters escaped.
    var globEscaped: String {
        var out = ""
        for character in self {
            if "*?[]\\^".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
