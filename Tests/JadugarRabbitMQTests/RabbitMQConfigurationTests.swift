import Jadugar
import JadugarRabbitMQ
import Testing

/// URL parsing and redaction; no broker needed.
@Suite("RabbitMQ configuration")
struct RabbitMQConfigurationTests {
    @Test("an amqp URL gives endpoints, vhost and credentials; the description hides the password")
    func amqpURL() throws {
        let configuration = try RabbitMQConfiguration(url: "amqp://app:s3cr%40t@mq1:5673,mq2/orders?heartbeat=7&connection_timeout=1500&name=billing&exchange=events")
        #expect(configuration.endpoints == [.init(host: "mq1", port: 5673), .init(host: "mq2", port: 5672)])
        #expect(configuration.virtualHost == "orders")
        #expect(configuration.user == "app")
        #expect(configuration.password == "s3cr@t")
        #expect(configuration.heartbeat == .seconds(7))
        #expect(configuration.connectTimeout == .milliseconds(1500))
        #expect(configuration.connectionName == "billing")
        #expect(configuration.defaultExchange == "events")
        #expect(configuration.tls == nil)
        #expect(!configuration.description.contains("s3cr"))
        #expect(configuration.description == "amqp://app:***@mq1:5673,mq2:5672/orders")
    }

    @Test("the vhost %2f is /, and no path is / too; defaults are guest on 5672")
    func defaults() throws {
        #expect(try RabbitMQConfiguration(url: "amqp://127.0.0.1/%2f").virtualHost == "/")
        let bare = try RabbitMQConfiguration(url: "amqp://localhost")
        #expect(bare.virtualHost == "/")
        #expect(bare.user == "guest")
        #expect(bare.endpoints == [.init(host: "localhost", port: 5672)])
        #expect(bare.confirms)
        #expect(bare.defaultExchange == "jadugar")
    }

    @Test("amqps turns TLS on with verification, port 5671 and the files from the query")
    func amqpsURL() throws {
        let configuration = try RabbitMQConfiguration(url: "amqps://u:p@mq.example.com/prod?cacertfile=/etc/ca.pem&certfile=/etc/c.pem&keyfile=/etc/c.key&auth_mechanism=external")
        #expect(configuration.endpoints == [.init(host: "mq.example.com", port: 5671)])
        let tls = try #require(configuration.tls)
        #expect(tls.verifyPeer && tls.verifyHostname)
        #expect(tls.caCertificatePath == "/etc/ca.pem")
        #expect(tls.clientCertificatePath == "/etc/c.pem")
        #expect(tls.clientKeyPath == "/etc/c.key")
        #expect(tls.useExternalAuthentication)
        #expect(try RabbitMQConfiguration(url: "amqps://h?verify=verify_none").tls?.verifyPeer == false)
    }

    @Test("bad URLs fail with invalidURL or unsupportedScheme, never showing the password")
    func badURLs() {
        for (url, code) in [
            ("redis://u:hunter2@h", MessagingError.Code.unsupportedScheme),
            ("amqp://u:hunter2@h?heartbeat=soon", .invalidURL),
            ("amqps://u:hunter2@h?verify=maybe", .invalidURL),
            ("amqp://u:hunter2@h?cacertfile=/ca.pem", .invalidURL),
            ("amqp://u:hunter2@h:99999", .invalidURL),
        ] {
            do {
                _ = try RabbitMQConfiguration(url: url)
                Issue.record("\(url) was accepted")
            } catch let error as MessagingError {
                #expect(error.code == code, "\(url): \(error)")
                #expect(!error.description.contains("hunter2"))
            } catch {
                Issue.record("\(url): unexpected \(error)")
            }
        }
    }

    @Test("register() makes amqp and amqps URLs build RabbitMQ brokers")
    func registry() throws {
        RabbitMQBroker.register()
        #expect(BrokerRegistry.schemes.contains("amqp") && BrokerRegistry.schemes.contains("amqps"))
        let broker = try BrokerRegistry.makeBroker(url: "amqp://guest:guest@127.0.0.1:5672/%2f")
        #expect(broker is RabbitMQBroker)
        #expect(broker.name == "rabbitmq")
        #expect(broker.defaultExchange == "jadugar")
        #expect(!broker.isConnected)
    }

    @Test("operations before connect fail with notConnected")
    func notConnected() async throws {
        let broker = RabbitMQBroker(configuration: RabbitMQConfiguration())
        let error = await #expect(throws: MessagingError.self) { try await broker.publish(Message(topic: "a", string: "x"), options: .default) }
        #expect(error?.code == .notConnected)
        await #expect(throws: MessagingError.self) { _ = try await broker.consume(queue: "q", options: ConsumeOptions()) }
        #expect(await broker.healthCheck().isHealthy == false)
        try await broker.disconnect()
    }

    @Test("capabilities are declared honestly: emulated delayed retries and reconnects, no replay, no exactly-once")
    func capabilities() {
        var configuration = RabbitMQConfiguration()
        configuration.maxPayloadBytes = 10
        let capabilities = RabbitMQBroker(configuration: configuration).capabilities
        #expect(capabilities.maxPayloadBytes == 10)
        #expect(capabilities.ordering == .queue)
        #expect(capabilities.supports(.persistence) && capabilities.supports(.delayedRedelivery) && capabilities.supports(.priority))
        #expect(capabilities.emulated == [.delayedRedelivery, .reconnect])
        #expect(!capabilities.supports(.replay) && !capabilities.supports(.exactlyOnce))
    }
}
