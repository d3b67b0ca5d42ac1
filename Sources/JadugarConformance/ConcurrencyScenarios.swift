import Jadugar
import Synchronization

enum ConcurrencyScenarios {
    static let all: [ConformanceScenario] = [
        ConformanceScenario("concurrency.publishers-and-subscribers", "50 concurrent publishers and 10 competing subscribers on one topic lose nothing") { context in
            let publishers = 50
            let perPublisher = context.configuration.count(100, minimum: 4)
            let topic = context.unique("load")
            let group = context.unique("g")
            try await context.declareGroup(group, pattern: topic)
            let tracker = DeliveryTracker()
            var streams: [DeliveryStream] = []
            var consumers: [Task<Void, any Error>] = []
            for _ in 0..<10 {
                let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group))
                streams.append(stream)
                consumers.append(context.drain(stream, into: tracker))
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for p in 0..<publishers {
                    group.addTask {
                        try await context.publish((p * perPublisher)..<((p + 1) * perPublisher), topic: topic)
                    }
                }
                try await group.waitForAll()
            }
            try await context.expectAll(tracker, count: publishers * perPublisher, "50 publishers, 10 subscribers")
            for consumer in consumers { consumer.cancel() }
            for stream in streams { await stream.close() }
        },
        ConformanceScenario("concurrency.many-topics", "20 topics published and consumed at once each get exactly their own messages") { context in
            let topics = 20
            let perTopic = context.configuration.count(100)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for t in 0..<topics {
                    group.addTask {
                        let topic = context.unique("topic\(t)")
                        let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: context.unique("g\(t)")))
                        let range = (t * perTopic)..<((t + 1) * perTopic)
                        let tracker = DeliveryTracker()
                        let consumer = Task {
                            while let delivery = try await stream.next() {
                                let index = try context.verify(delivery.message)
                                try context.require(range.contains(index), "topic \(t) received message \(index) of another topic")
                                try await delivery.ack()
                                tracker.record(delivery.message.id)
                            }
                        }
                        try await context.publish(range, topic: topic)
                        try await context.expectAll(tracker, count: perTopic, "topic \(t)")
                        // Let the consumer finish acknowledging before its stream closes.
                        consumer.cancel()
                        let outcome = await consumer.result
                        await stream.close()
                        if case .failure(let error) = outcome, !(error is CancellationError) { throw error }
                    }
                }
                try await group.waitForAll()
            }
        },
        ConformanceScenario("concurrency.close-one-subscription", "closing one subscription leaves the others working") { context in
            let n = context.configuration.count(200)
            let topic = context.unique("shared")
            let first = try await context.broker.subscribe(topic, options: SubscribeOptions(group: context.unique("one")))
            let second = try await context.broker.subscribe(topic, options: SubscribeOptions(group: context.unique("two")))
            let tracker = DeliveryTracker()
            let consumer = context.drain(second, into: tracker)
            try await context.publish(0..<(n / 2), topic: topic)
            await first.close()
            try await context.publish((n / 2)..<n, topic: topic)
            try await context.expectAll(tracker, count: n, "the subscription left open")
            consumer.cancel()
            await second.close()
        },
        ConformanceScenario("concurrency.subscribe-close-storm", "after a storm of concurrent subscribe/close cycles a fresh subscriber still gets every message") { context in
            let n = context.configuration.count(500)
            let topic = context.unique("storm")
            let group = context.unique("g")
            try await context.declareGroup(group, pattern: topic)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await context.publish(0..<n, topic: topic) }
                for _ in 0..<20 {
                    tasks.addTask {
                        for _ in 0..<5 {
                            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group, prefetch: 8))
                            // Take a message without acknowledging it, then leave: it must come back.
                            _ = try await context.next(stream, within: .milliseconds(5))
                            await stream.close()
                        }
                    }
                }
                try await tasks.waitForAll()
            }
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group))
            let tracker = DeliveryTracker()
            let consumer = context.drain(stream, into: tracker)
            try await context.expectAll(tracker, count: n, "fresh subscriber after the storm")
            consumer.cancel()
            await stream.close()
        },
        ConformanceScenario("concurrency.publishers-closing-mid-stream", "publishers that disconnect mid-stream lose nothing the broker confirmed") { context in
            let perPublisher = context.configuration.count(200)
            let topic = context.unique("closing")
            let group = context.unique("g")
            try await context.declareGroup(group, pattern: topic)
            let confirmed = Locked<Set<Int>>([])
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for p in 0..<5 {
                    let publisher = try await context.connectAnother()
                    tasks.addTask {
                        let base = p * perPublisher
                        for index in base..<(base + perPublisher) {
                            var message = context.message(index)
                            message.topic = topic
                            do {
                                try await publisher.publish(message, options: .default)
                                _ = confirmed.withLock { $0.insert(index) }
                            } catch {
                                // Unconfirmed: the publisher knows it failed, so it is not owed a delivery.
                            }
                            if index == base + perPublisher / 2 {
                                Task { try? await publisher.disconnect() }
                            }
                        }
                    }
                }
                try await tasks.waitForAll()
            }
            let expected = confirmed.withLock { $0 }
            context.count { $0.published += expected.count }
            try context.require(expected.count >= 5 * perPublisher / 2, "only \(expected.count) publishes were confirmed before the disconnects")
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group))
            let tracker = DeliveryTracker()
            let seen = Locked<Set<Int>>([])
            let consumer = Task {
                while let delivery = try await stream.next() {
                    let index = try context.verify(delivery.message)
                    _ = seen.withLock { $0.insert(index) }
                    tracker.record(delivery.message.id)
                    try await delivery.ack()
                }
            }
            let complete = await tracker.wait(for: expected.count, within: context.configuration.deliveryTimeout)
            let delivered = seen.withLock { $0 }
            let missing = expected.subtracting(delivered)
            context.count {
                $0.delivered += tracker.distinct
                $0.duplicates += tracker.duplicates
                $0.lost += missing.count
            }
            consumer.cancel()
            await stream.close()
            try context.require(complete || missing.isEmpty, "\(missing.count) confirmed messages never arrived, for example \(missing.sorted().prefix(5))")
        },
    ]
}
