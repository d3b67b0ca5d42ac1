import Jadugar

enum RequestReplyScenarios {
    static let all: [ConformanceScenario] = [
        ConformanceScenario("request-reply.round-trip", "a request gets its reply") { context in
            let topic = context.unique("math.add")
            let manager = context.manager()
            let rpc = RequestReply(manager, timeout: context.configuration.deliveryTimeout)
            let server = try await rpc.reply(topic) { request in
                let numbers = try request.decode([Int].self)
                return try Message(json: numbers.reduce(0, +))
            }
            let sum = try await rpc.request(topic, json: [1, 2, 39], as: Int.self)
            try context.require(sum == 42, "1 + 2 + 39 came back as \(sum)")
            context.count { $0.published += 1; $0.delivered += 1 }
            await server.cancel()
            await rpc.close()
        },
        ConformanceScenario("request-reply.timeout-drops-late-reply", "a request times out when the reply is late, and the late reply is dropped") { context in
            let topic = context.unique("slow")
            let manager = context.manager()
            let rpc = RequestReply(manager)
            // The server holds its reply until the requester has timed out: late by construction, not by a race of clocks.
            let (release, open) = AsyncStream<Void>.makeStream()
            let received = Locked(false)
            let server = try await rpc.reply(topic) { _ in
                received.withLock { $0 = true }
                for await _ in release { break }
                return Message(string: "late")
            }
            do {
                _ = try await rpc.request(topic, Message(string: "hi"), options: RequestOptions(timeout: .milliseconds(200)))
                throw context.fail("the request did not time out")
            } catch let error as MessagingError {
                try context.require(error.code == .timeout, "the request failed with \(error) instead of a timeout")
            }
            open.yield()
            open.finish()
            _ = try await context.within(context.configuration.deliveryTimeout, "the late reply") {
                while rpc.lateReplies < 1 { try await Task.sleep(for: .milliseconds(10)) }
                return true
            }
            try context.require(received.value, "the server never saw the request")
            await server.cancel()
            await rpc.close()
        },
        ConformanceScenario("request-reply.concurrent-requests", "100 concurrent requests each get their own reply") { context in
            let topic = context.unique("echo")
            let manager = context.manager()
            let rpc = RequestReply(manager, timeout: context.configuration.deliveryTimeout)
            let server = try await rpc.reply(topic, options: ReplyOptions(concurrency: 8)) { request in
                Message(payload: request.payload.reversed())
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<100 {
                    group.addTask {
                        let payload = Array("request-\(i)".utf8)
                        let reply = try await rpc.request(topic, Message(payload: payload))
                        try context.require(reply.payload == payload.reversed(), "request \(i) got the reply \(reply.payloadString ?? "?")")
                        context.count { $0.published += 1; $0.delivered += 1 }
                    }
                }
                try await group.waitForAll()
            }
            await server.cancel()
            await rpc.close()
        },
        ConformanceScenario("request-reply.handler-error", "a failing handler's error reaches the requester as an error, not a timeout") { context in
            let topic = context.unique("fails")
            let manager = context.manager()
            let rpc = RequestReply(manager, timeout: .seconds(60))
            let server = try await rpc.reply(topic) { _ in
                throw MessagingError(.invalidArgument, "division by zero")
            }
            let start = ContinuousClock.now
            do {
                _ = try await rpc.request(topic, Message(string: "1/0"))
                throw context.fail("the request succeeded")
            } catch let error as MessagingError {
                try context.require(error.code == .remoteFailure, "the requester got \(error.code), expected remoteFailure")
                try context.require(error.message.contains("division by zero"), "the error lost the handler's words: \(error.message)")
            }
            try context.require(ContinuousClock.now - start < .seconds(30), "the error took as long as a timeout")
            await server.cancel()
            await rpc.close()
        },
    ]
}
