import Jadugar

enum GroupScenarios {
    static let all: [ConformanceScenario] = [
        ConformanceScenario("groups.each-group-gets-every-message", "two groups on one topic each receive every message", requires: [.consumerGroups]) { context in
            let n = context.configuration.count(500)
            let topic = context.unique("fanout")
            let trackers = [DeliveryTracker(), DeliveryTracker()]
            var streams: [DeliveryStream] = []
            var consumers: [Task<Void, any Error>] = []
            for (i, tracker) in trackers.enumerated() {
                let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: context.unique("group\(i)")))
                streams.append(stream)
                consumers.append(context.drain(stream, into: tracker))
            }
            try await context.publish(0..<n, topic: topic)
            for (i, tracker) in trackers.enumerated() {
                try await context.expectAll(tracker, count: n, "group \(i)")
            }
            for consumer in consumers { consumer.cancel() }
            for stream in streams { await stream.close() }
        },
        ConformanceScenario("groups.competing-consumers-share", "consumers of one group share the messages without duplicates", requires: [.consumerGroups]) { context in
            let n = context.configuration.count(1000, minimum: 100)
            let topic = context.unique("compete")
            let group = context.unique("g")
            try await context.declareGroup(group, pattern: topic)
            let all = DeliveryTracker()
            let perConsumer = [DeliveryTracker(), DeliveryTracker(), DeliveryTracker()]
            var streams: [DeliveryStream] = []
            var consumers: [Task<Void, any Error>] = []
            for mine in perConsumer {
                let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: group, prefetch: 4))
                streams.append(stream)
                consumers.append(Task {
                    while let delivery = try await stream.next() {
                        _ = try context.verify(delivery.message)
                        all.record(delivery.message.id)
                        mine.record(delivery.message.id)
                        try await delivery.ack()
                        await Task.yield()
                    }
                })
            }
            try await context.publish(0..<n, topic: topic)
            try await context.expectAll(all, count: n, "three competing consumers")
            let shares = perConsumer.map(\.distinct)
            try context.require(shares.filter { $0 > 0 }.count >= 2, "one consumer took every message: shares \(shares)")
            if context.capabilities.supports(.exactlyOnce) {
                try context.require(all.duplicates == 0, "\(all.duplicates) duplicates on an exactly-once broker")
            }
            for consumer in consumers { consumer.cancel() }
            for stream in streams { await stream.close() }
        },
        ConformanceScenario("groups.per-key-order", "messages arrive in publish order within the broker's ordering scope") { context in
            guard context.capabilities.ordering != .none else { return }
            let n = context.configuration.count(500)
            let topic = context.unique("order")
            let keys = context.capabilities.ordering == .key ? ["k1", "k2", "k3"] : ["all"]
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: context.unique("g"), prefetch: 64))
            for index in 0..<n {
                let key = keys[index % keys.count]
                var message = context.message(index, key: key)
                message.topic = topic
                try await context.broker.publish(message, options: PublishOptions(key: key))
                context.count { $0.published += 1 }
            }
            var last: [String: Int] = [:]
            let tracker = DeliveryTracker()
            while tracker.distinct < n {
                guard let delivery = try await context.next(stream, within: context.configuration.deliveryTimeout) else { break }
                let index = try context.verify(delivery.message)
                let key = delivery.message.metadata.headers["x-key"] ?? "?"
                if !delivery.redelivered {
                    try context.require(index > (last[key] ?? -1), "key \(key): message \(index) arrived after \(last[key]!)")
                    last[key] = index
                }
                tracker.record(delivery.message.id)
                try await delivery.ack()
            }
            try await context.expectAll(tracker, count: n, "ordered messages")
            await stream.close()
        },
        ConformanceScenario("groups.replay-for-new-group", "a new group sees messages published before it existed", requires: [.replay]) { context in
            let n = context.configuration.count(100)
            let topic = context.unique("log")
            try await context.publish(0..<n, topic: topic)
            let stream = try await context.broker.subscribe(topic, options: SubscribeOptions(group: context.unique("late")))
            let tracker = DeliveryTracker()
            let consumer = context.drain(stream, into: tracker)
            try await context.expectAll(tracker, count: n, "a group created after publishing")
            consumer.cancel()
            await stream.close()
        },
    ]
}
