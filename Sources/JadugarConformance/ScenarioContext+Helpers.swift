import Jadugar

extension ScenarioContext {
    /// Publishes messages `range` on a topic and counts them as published.
    public func publish(_ range: Range<Int>, topic: String, size: Int = 32, on broker: (any MessageBroker)? = nil, options: PublishOptions = .default) async throws {
        let target = broker ?? self.broker
        for index in range {
            var message = message(index, size: size)
            message.topic = topic
            try await target.publish(message, options: options)
            count { $0.published += 1 }
        }
    }

    /// Consumes a stream in the background: verifies, (optionally) acknowledges, then records each
    /// delivery. Recording after the ack means that once ``expectAll(_:count:_:)`` is satisfied every
    /// expected message is settled, so closing the stream right after cannot redeliver one.
    public func drain(_ stream: DeliveryStream, into tracker: DeliveryTracker, size: Int = 32, ack: Bool = true) -> Task<Void, any Error> {
        Task {
            while let delivery = try await stream.next() {
                _ = try verify(delivery.message, size: size)
                if ack { try await delivery.ack() }
                tracker.record(delivery.message.id)
            }
        }
    }

    /// Waits until `expected` distinct messages arrived; counts delivered, duplicates and lost, and fails if any are missing.
    public func expectAll(_ tracker: DeliveryTracker, count expected: Int, _ what: String) async throws {
        let complete = await tracker.wait(for: expected, within: configuration.deliveryTimeout)
        let distinct = tracker.distinct
        count {
            $0.delivered += distinct
            $0.duplicates += tracker.duplicates
            if distinct < expected { $0.lost += expected - distinct }
        }
        try require(complete, "\(what): \(distinct) of \(expected) messages arrived within \(configuration.deliveryTimeout)")
    }

    /// Checks that nothing arrives on a stream for `quiet`.
    public func expectNothing(_ stream: DeliveryStream, for quiet: Duration, _ what: String) async throws {
        if let delivery = try await next(stream, within: quiet) {
            throw fail("\(what): message \(delivery.message.metadata.headers["x-seq"] ?? delivery.message.id) arrived")
        }
    }

    /// Declares the queue a group subscription uses, so that messages published before the first subscriber are kept.
    public func declareGroup(_ group: String, pattern: String) async throws {
        _ = try await broker.declareSubscription(pattern, options: SubscribeOptions(group: group))
    }
}
