import Foundation
import Jadugar

enum DeliveryScenarios {
    static let all: [ConformanceScenario] = [
        ConformanceScenario("delivery.before-and-after-subscribe", "messages published before and after a group subscribes all arrive with payload and metadata intact") { context in
            let n = context.configuration.count(1000)
            let topic = context.unique("orders.created")
            let group = context.unique("g")
            try await context.declareGroup(group, pattern: topic)
            try await context.publish(0..<(n / 2), topic: topic)
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group))
            let tracker = DeliveryTracker()
            let consumer = context.drain(stream, into: tracker)
            try await context.publish((n / 2)..<n, topic: topic)
            try await context.expectAll(tracker, count: n, "before and after subscribe")
            consumer.cancel()
            await stream.close()
        },
        ConformanceScenario("delivery.topic-isolation", "a subscription gets the messages of its topic and no other") { context in
            let n = context.configuration.count(200)
            let a = context.unique("a.event"), b = context.unique("b.event")
            let streamA = try await context.broker.subscribe(a, options: SubscribeOptions(group: context.unique("ga")))
            let streamB = try await context.broker.subscribe(b, options: SubscribeOptions(group: context.unique("gb")))
            try await context.publish(0..<n, topic: a)
            try await context.publish(n..<(2 * n), topic: b)
            for (stream, range, topic) in [(streamA, 0..<n, a), (streamB, n..<(2 * n), b)] {
                let tracker = DeliveryTracker()
                for _ in range {
                    guard let delivery = try await context.next(stream, within: context.configuration.deliveryTimeout) else { break }
                    let index = try context.verify(delivery.message)
                    try context.require(range.contains(index), "subscription to \(topic) received message \(index) of the other topic")
                    try context.require(delivery.message.topic == topic, "message \(index) arrived with topic \(delivery.message.topic), expected \(topic)")
                    tracker.record(delivery.message.id)
                    try await delivery.ack()
                }
                try await context.expectAll(tracker, count: n, "topic \(topic)")
                try await context.expectNothing(stream, for: .milliseconds(200), "after its own \(n) messages, \(topic)")
                await stream.close()
            }
        },
        ConformanceScenario("delivery.payload-sizes", "a 1 MiB payload and an empty payload arrive byte for byte") { context in
            let topic = context.unique("sizes")
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: context.unique("g")))
            for (index, size) in [(0, 1 << 20), (1, 0), (2, 1)] {
                var message = context.message(index, size: size)
                message.topic = topic
                try await context.broker.publish(message, options: .default)
                context.count { $0.published += 1 }
                guard let delivery = try await context.next(stream, within: context.configuration.deliveryTimeout) else {
                    context.count { $0.lost += 1 }
                    throw context.fail("the \(size)-byte message did not arrive")
                }
                _ = try context.verify(delivery.message, size: size)
                context.count { $0.delivered += 1 }
                try await delivery.ack()
            }
            await stream.close()
        },
        ConformanceScenario("delivery.metadata-and-unicode-headers", "ids, correlation, reply-to, content type, priority and non-ASCII headers survive the trip") { context in
            let topic = context.unique("meta")
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: context.unique("g")))
            var message = context.message(7)
            message.topic = topic
            message.metadata.replyTo = "reply-queue-ü"
            message.metadata.contentType = "application/json; charset=utf-8"
            message.metadata.headers["grüße"] = "こんにちは 🌍"
            message.metadata.headers["empty"] = ""
            message.metadata.headers["x-long"] = String(repeating: "λ", count: 2000)
            try await context.broker.publish(message, options: .default)
            context.count { $0.published += 1 }
            guard let delivery = try await context.next(stream, within: context.configuration.deliveryTimeout) else {
                context.count { $0.lost += 1 }
                throw context.fail("the message did not arrive")
            }
            context.count { $0.delivered += 1 }
            let got = delivery.message
            _ = try context.verify(got)
            try context.require(got.id == message.id, "the id changed from \(message.id) to \(got.id)")
            try context.require(got.metadata.replyTo == message.metadata.replyTo, "reply-to changed to \(got.metadata.replyTo ?? "nil")")
            try context.require(got.metadata.contentType == message.metadata.contentType, "content type changed to \(got.metadata.contentType ?? "nil")")
            for (key, value) in message.metadata.headers {
                try context.require(got.metadata.headers[key] == value, "header '\(key)' changed to \(got.metadata.headers[key].map { "'\($0.prefix(40))'" } ?? "nothing")")
            }
            let drift = abs(got.timestamp.timeIntervalSince(message.timestamp))
            try context.require(drift < 0.002, "the timestamp moved by \(drift) s")
            try await delivery.ack()
            await stream.close()
        },
    ]
}
