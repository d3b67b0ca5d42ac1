import Foundation
import Jadugar
import JadugarRedis
import Testing

extension RedisTests {
    /// Broker-side authorization: a Redis ACL user the server itself restricts.
    @Suite("Redis ACL")
    struct ACL {
        @Test("a user that may publish but not consume: publishing works, consuming ends with Redis's ACL refusal, the password nowhere")
        func publishOnlyUser() async throws {
            let prefix = RedisTestEnvironment.uniquePrefix("acl")
            let user = "jadugar-publisher-\(UInt32.random(in: 0...UInt32.max))"
            let password = "acl-secret-\(UInt64.random(in: 0...UInt64.max))"
            // Every command except the stream reads a consumer needs.
            _ = try await RedisCLI.run(["ACL", "SETUSER", user, "reset", "on", ">\(password)", "~*", "&*", "+@all", "-xreadgroup", "-xautoclaim", "-xclaim", "-xread"])
            let admin = try await Broker.connect(prefix: prefix)
            do {
                try await admin.createQueue("orders", options: QueueOptions(durable: true))
                try await admin.bind(queue: "orders", exchange: admin.defaultExchange, routingKey: "order.*")

                let base = try BrokerURL(try RedisTestEnvironment.url())
                let restrictedURL = "redis://\(user):\(password)@\(base.host.isEmpty ? "127.0.0.1" : base.host):\(base.port ?? 6379)"
                let restricted = try RedisBroker(url: restrictedURL, configuration: try await RedisTestEnvironment.configuration(prefix: prefix))
                try await restricted.connect()

                // Publishing is allowed: the message reaches the queue, as the admin sees.
                try await restricted.publish(Message(topic: "order.created", string: "allowed"), options: .default)
                let delivered = try #require(try await admin.get(queue: "orders"), "the restricted user's publish did not arrive")
                #expect(delivered.message.payloadString == "allowed")
                try await delivered.ack()

                // Consuming is not: Redis refuses, and the refusal reaches the caller in Redis's words.
                var refusal: MessagingError?
                do {
                    let stream = try await restricted.consume(queue: "orders", options: ConsumeOptions(prefetch: 1))
                    try await admin.send(Message(string: "forbidden"), toQueue: "orders")
                    if let delivery = try await next(stream, within: .seconds(10)) {
                        Issue.record("a publish-only user received \(delivery.message.id)")
                    }
                    await stream.close()
                } catch let error as MessagingError {
                    refusal = error
                }
                let error = try #require(refusal, "consuming as a publish-only user did not fail")
                #expect(error.code == .accessDenied, "\(error)")
                // Direct commands say NOPERM; inside the adapter's functions Redis says ERR "The user executing the script can't run this command".
                #expect(error.brokerCode == "NOPERM" || error.brokerReason?.contains("can't run this command") == true, "\(error)")
                #expect(!"\(error)".contains(password), "the password leaked into the error")
                try? await restricted.disconnect()
            } catch {
                _ = try? await RedisCLI.run(["ACL", "DELUSER", user])
                try? await Broker.cleanUp(prefix, admin)
                throw error
            }
            _ = try await RedisCLI.run(["ACL", "DELUSER", user])
            try await Broker.cleanUp(prefix, admin)
        }
    }
}
