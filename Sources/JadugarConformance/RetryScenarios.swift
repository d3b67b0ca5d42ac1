import Foundation
import Jadugar

enum RetryScenarios {
    static let all: [ConformanceScenario] = [
        ConformanceScenario("retry.backoff-then-dead-letter", "a failing handler is retried with backoff, then dead-lettered with attempts, reason and original topic", requires: [.delayedRedelivery, .deadLetter]) { context in
            let topic = context.unique("retry")
            let group = context.unique("g")
            let manager = context.manager()
            let calls = Locked<[ContinuousClock.Instant]>([])
            let policy = RetryPolicy.exponential(attempts: 3, delay: .milliseconds(100))
            let subscription = try await manager.subscribe(topic, options: SubscribeOptions(group: group, retry: policy)) { _ in
                calls.withLock { $0.append(.now) }
                throw MessagingError(.brokerError, "payment service unavailable")
            }
            try await context.publish(0..<1, topic: topic)
            let deadLetters = try await context.broker.consume(queue: "\(group).dlq", options: ConsumeOptions())
            guard let dead = try await context.next(deadLetters, within: context.configuration.deliveryTimeout) else {
                context.count { $0.lost += 1 }
                throw context.fail("nothing reached \(group).dlq; handler ran \(calls.value.count) times")
            }
            context.count { $0.delivered += 1 }
            let times = calls.value
            try context.require(times.count == 3, "the handler ran \(times.count) times, expected 3")
            for (i, pair) in zip(times, times.dropFirst()).enumerated() {
                let gap = pair.1 - pair.0
                let expected = policy.baseDelay(forRetry: i + 1)
                try context.require(gap >= expected * 0.9, "retry \(i + 1) came after \(gap), expected at least \(expected)")
            }
            let headers = dead.message.metadata.headers
            try context.require(headers[JadugarHeader.attempts] == "3", "attempts header is \(headers[JadugarHeader.attempts] ?? "missing"), expected 3")
            try context.require(headers[JadugarHeader.deadLetterReason] == "rejected", "reason is \(headers[JadugarHeader.deadLetterReason] ?? "missing")")
            try context.require(headers[JadugarHeader.lastError]?.contains("payment service unavailable") == true, "last error is \(headers[JadugarHeader.lastError] ?? "missing")")
            try context.require((headers[JadugarHeader.originalTopic] ?? dead.message.topic) == topic, "original topic is \(headers[JadugarHeader.originalTopic] ?? "missing")")
            try await dead.ack()
            await subscription.cancel()
            await deadLetters.close()
        },
        ConformanceScenario("retry.dead-letter-retry-to-origin", "a dead letter retried by the dead-letter handler goes back to its original topic", requires: [.deadLetter, .browse]) { context in
            let topic = context.unique("redo")
            let group = context.unique("g")
            let manager = context.manager()
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group))
            try await context.publish(0..<3, topic: topic)
            for _ in 0..<3 {
                guard let delivery = try await context.next(stream, within: context.configuration.deliveryTimeout) else { throw context.fail("a message did not arrive") }
                try await delivery.reject(reason: "rejected", error: "downstream down")
            }
            let handler = DeadLetterHandler(manager, options: DeadLetterOptions(queue: "\(group).dlq"))
            var failed: [Message] = []
            for _ in 0..<100 where failed.count < 3 {
                failed = try await handler.getFailedMessages()
                if failed.count < 3 { try await Task.sleep(for: .milliseconds(20)) }
            }
            try context.require(failed.count == 3, "the dead-letter queue holds \(failed.count) messages, expected 3")
            let stats = try await handler.getStats()
            try context.require(stats.count == 3 && stats.byReason["rejected"] == 3, "stats: \(stats)")
            try await handler.retry(failed[1].id)
            guard let back = try await context.next(stream, within: context.configuration.deliveryTimeout) else {
                context.count { $0.lost += 1 }
                throw context.fail("the retried message did not come back to \(topic)")
            }
            try context.require(back.message.id == failed[1].id, "message \(back.message.id) came back instead of \(failed[1].id)")
            try context.require(back.message.topic == topic, "it came back on \(back.message.topic)")
            try await back.ack()
            try context.require(try await handler.getFailedMessages().count == 2, "the retried message is still in the dead-letter queue")
            try context.require(try await handler.retryAll() == 2, "retryAll did not send back the other two")
            for _ in 0..<2 {
                guard let again = try await context.next(stream, within: context.configuration.deliveryTimeout) else { throw context.fail("a message retried with retryAll did not come back") }
                try await again.ack()
            }
            context.count { $0.delivered += 3 }
            await stream.close()
        },
        ConformanceScenario("retry.expiration-to-dead-letter", "a message that expires unconsumed is dead-lettered with reason expired", requires: [.messageTTL, .deadLetter]) { context in
            let topic = context.unique("ttl")
            let group = context.unique("g")
            try await context.declareGroup(group, pattern: topic)
            var message = context.message(0)
            message.topic = topic
            message.metadata.expiration = .milliseconds(100)
            try await context.broker.publish(message, options: .default)
            context.count { $0.published += 1 }
            let deadLetters = try await context.broker.consume(queue: "\(group).dlq", options: ConsumeOptions())
            guard let dead = try await context.next(deadLetters, within: context.configuration.deliveryTimeout) else {
                context.count { $0.lost += 1 }
                throw context.fail("the expired message never reached \(group).dlq")
            }
            context.count { $0.delivered += 1 }
            _ = try context.verify(dead.message)
            try context.require(dead.message.metadata.headers[JadugarHeader.deadLetterReason] == "expired", "reason is \(dead.message.metadata.headers[JadugarHeader.deadLetterReason] ?? "missing")")
            try await dead.ack()
            await deadLetters.close()
        },
        ConformanceScenario("retry.priority-order", "waiting messages are delivered highest priority first", requires: [.priority]) { context in
            let queue = context.unique("prio")
            try await context.broker.createQueue(queue, options: QueueOptions(maxPriority: 9))
            let priorities: [UInt8] = [1, 5, 9, 3, 7, 0]
            for (index, priority) in priorities.enumerated() {
                var message = context.message(index)
                message.metadata.priority = priority
                try await context.broker.send(message, toQueue: queue)
                context.count { $0.published += 1 }
            }
            let stream = try await context.broker.consume(queue: queue, options: ConsumeOptions(prefetch: 1))
            var order: [UInt8] = []
            for _ in priorities {
                guard let delivery = try await context.next(stream, within: context.configuration.deliveryTimeout) else { break }
                order.append(delivery.message.metadata.priority ?? 0)
                try await delivery.ack()
            }
            context.count { $0.delivered += order.count }
            try context.require(order == priorities.sorted(by: >), "delivered in priority order \(order)")
            await stream.close()
        },
    ]
}
