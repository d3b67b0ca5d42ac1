import Jadugar

enum AcknowledgementScenarios {
    static let all: [ConformanceScenario] = [
        ConformanceScenario("acknowledgement.nack-requeue-redelivers", "a message nacked with requeue comes back marked as redelivered", requires: [.redelivery]) { context in
            let topic = context.unique("nack")
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: context.unique("g")))
            try await context.publish(0..<1, topic: topic)
            guard let first = try await context.next(stream, within: context.configuration.deliveryTimeout) else { throw context.fail("the message did not arrive") }
            try context.require(first.deliveryCount == 1, "first delivery count is \(first.deliveryCount), expected 1")
            try await first.nack(requeue: true)
            guard let second = try await context.next(stream, within: context.configuration.deliveryTimeout) else {
                context.count { $0.lost += 1 }
                throw context.fail("the nacked message was not redelivered")
            }
            try context.require(second.message.id == first.message.id, "a different message arrived after the nack")
            try context.require(second.redelivered && second.deliveryCount >= 2, "the redelivery is not marked (delivery count \(second.deliveryCount))")
            try await second.ack()
            context.count { $0.delivered += 1; $0.duplicates += 1 }
            try await context.expectNothing(stream, for: .milliseconds(200), "after the ack")
            await stream.close()
        },
        ConformanceScenario("acknowledgement.reject-dead-letters", "a rejected message goes to the dead-letter queue with its reason and original topic", requires: [.deadLetter]) { context in
            let topic = context.unique("reject")
            let group = context.unique("g")
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group))
            try await context.publish(0..<1, topic: topic)
            guard let delivery = try await context.next(stream, within: context.configuration.deliveryTimeout) else { throw context.fail("the message did not arrive") }
            try await delivery.reject(reason: "rejected", error: "bad order ✗")
            let deadLetters = try await context.broker.consume(queue: "\(group).dlq", options: ConsumeOptions())
            guard let dead = try await context.next(deadLetters, within: context.configuration.deliveryTimeout) else {
                context.count { $0.lost += 1 }
                throw context.fail("nothing arrived in \(group).dlq")
            }
            _ = try context.verify(dead.message)
            let headers = dead.message.metadata.headers
            try context.require(headers[JadugarHeader.deadLetterReason] == "rejected", "dead-letter reason is \(headers[JadugarHeader.deadLetterReason] ?? "missing")")
            try context.require(headers[JadugarHeader.lastError] == "bad order ✗", "last error is \(headers[JadugarHeader.lastError] ?? "missing")")
            try context.require((headers[JadugarHeader.originalTopic] ?? dead.message.topic) == topic, "original topic is \(headers[JadugarHeader.originalTopic] ?? dead.message.topic)")
            try await dead.ack()
            context.count { $0.delivered += 1 }
            try await context.expectNothing(stream, for: .milliseconds(200), "after the reject, on the origin queue")
            await stream.close()
            await deadLetters.close()
        },
        ConformanceScenario("acknowledgement.prefetch-one", "with prefetch 1 no second message arrives before the first is acknowledged", requires: [.prefetch]) { context in
            let topic = context.unique("prefetch")
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: context.unique("g"), prefetch: 1))
            try await context.publish(0..<3, topic: topic)
            var received: [Int] = []
            for step in 0..<3 {
                guard let delivery = try await context.next(stream, within: context.configuration.deliveryTimeout) else {
                    throw context.fail("message \(step + 1) of 3 did not arrive")
                }
                received.append(try context.verify(delivery.message))
                if step < 2 {
                    // Fetch on a second task: it must not get a message while one is unacknowledged.
                    try await context.expectNothing(stream, for: .milliseconds(300), "with one message unacknowledged and prefetch 1, a second")
                }
                try await delivery.ack()
            }
            try context.require(Set(received).count == 3, "received \(received)")
            context.count { $0.delivered += 3 }
            await stream.close()
        },
        ConformanceScenario("acknowledgement.redelivery-after-close", "unacknowledged messages are redelivered after their consumer closes", requires: [.redelivery]) { context in
            let n = context.configuration.count(50)
            let topic = context.unique("close")
            let group = context.unique("g")
            try await context.declareGroup(group, pattern: topic)
            try await context.publish(0..<n, topic: topic)
            let first = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group, prefetch: n))
            var taken = 0
            while taken < min(n, 10), try await context.next(first, within: context.configuration.deliveryTimeout) != nil { taken += 1 }
            try context.require(taken > 0, "the first consumer received nothing")
            await first.close()
            let second = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group))
            let tracker = DeliveryTracker()
            let redelivered = DeliveryTracker()
            let consumer = Task {
                while let delivery = try await second.next() {
                    _ = try context.verify(delivery.message)
                    if delivery.redelivered { redelivered.record(delivery.message.id) }
                    tracker.record(delivery.message.id)
                    try await delivery.ack()
                }
            }
            try await context.expectAll(tracker, count: n, "after the first consumer closed")
            try context.require(redelivered.distinct >= taken, "\(redelivered.distinct) deliveries were marked redelivered; \(taken) were taken before the close")
            consumer.cancel()
            await second.close()
        },
        ConformanceScenario("acknowledgement.redelivery-after-cancel", "messages in a cancelled subscription's handlers are redelivered to the next subscriber", requires: [.redelivery]) { context in
            let n = context.configuration.count(20)
            let topic = context.unique("cancel")
            let group = context.unique("g")
            let manager = context.manager()
            try await context.declareGroup(group, pattern: topic)
            try await context.publish(0..<n, topic: topic)
            let entered = DeliveryTracker()
            let stuck = try await manager.subscribe(topic, options: SubscribeOptions(group: group, concurrency: 4)) { message in
                entered.record(message.id)
                // Hang until cancelled, like a handler stuck on a dead dependency.
                try await Task.sleep(for: .seconds(3600))
            }
            _ = await entered.wait(for: 4, within: context.configuration.deliveryTimeout)
            await stuck.cancel()
            let tracker = DeliveryTracker()
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group))
            let consumer = context.drain(stream, into: tracker)
            try await context.expectAll(tracker, count: n, "after the stuck subscription was cancelled")
            consumer.cancel()
            await stream.close()
        },
        ConformanceScenario("acknowledgement.failing-subscriber-leaves-all", "a subscriber that fails on every delivery and closes leaves every message for the next", requires: [.redelivery]) { context in
            let n = context.configuration.count(100)
            let topic = context.unique("failing")
            let group = context.unique("g")
            try await context.declareGroup(group, pattern: topic)
            try await context.publish(0..<n, topic: topic)
            let failing = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group, prefetch: 8))
            for _ in 0..<min(n, 30) {
                guard let delivery = try await context.next(failing, within: .seconds(2)) else { break }
                try await delivery.nack(requeue: true)
            }
            await failing.close()
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group))
            let tracker = DeliveryTracker()
            let consumer = context.drain(stream, into: tracker)
            try await context.expectAll(tracker, count: n, "after the failing subscriber left")
            consumer.cancel()
            await stream.close()
        },
    ]
}
