import Jadugar

enum ReconnectScenarios {
    static let all: [ConformanceScenario] = [
        ConformanceScenario("reconnect.restart-mid-stream", "the broker restarts mid-stream and every confirmed message is still delivered", requires: [.persistence, .reconnect], needsRestart: true) { context in
            let n = context.configuration.count(1000)
            let topic = context.unique("restart")
            let group = context.unique("g")
            try await context.declareGroup(group, pattern: topic)
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group))
            let tracker = DeliveryTracker()
            let consumer = Task {
                while true {
                    do {
                        guard let delivery = try await stream.next() else { return }
                        _ = try context.verify(delivery.message)
                        tracker.record(delivery.message.id)
                        try? await delivery.ack()
                    } catch is CancellationError {
                        return
                    } catch {
                        // A failed ack or fetch during the restart: the adapter reconnects; keep going.
                    }
                }
            }
            let confirmed = Locked<Set<String>>([])
            let publisher = Task {
                for index in 0..<n {
                    var message = context.message(index)
                    message.topic = topic
                    for _ in 0..<200 {
                        do {
                            try await context.broker.publish(message, options: .default)
                            _ = confirmed.withLock { $0.insert(message.id) }
                            break
                        } catch {
                            try await Task.sleep(for: .milliseconds(50))
                        }
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            try await context.configuration.restartBroker?()
            try await publisher.value
            let expected = confirmed.value
            context.count { $0.published += expected.count }
            try await context.expectAll(tracker, count: expected.count, "after the restart")
            consumer.cancel()
            await stream.close()
        },
    ]
}
