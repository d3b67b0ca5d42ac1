import Jadugar
import Testing

@Suite("BrokerURL")
struct BrokerURLTests {
    @Test("parses scheme, credentials, hosts, path and query")
    func parse() throws {
        let url = try BrokerURL("amqps://app%40x:s%3Acret@rabbit.local:5671/orders%2Feu?heartbeat=10&cacert=/tmp/ca.pem")
        #expect(url.scheme == "amqps")
        #expect(url.user == "app@x")
        #expect(url.password == "s:cret")
        #expect(url.host == "rabbit.local")
        #expect(url.port == 5671)
        #expect(url.path == "orders/eu")
        #expect(url.query == ["heartbeat": "10", "cacert": "/tmp/ca.pem"])
        #expect(url.redacted == "amqps://app%40x:***@rabbit.local:5671/orders%2Feu?heartbeat=10&cacert=/tmp/ca.pem")
    }

    @Test("several hosts, IPv6, no port")
    func hosts() throws {
        let url = try BrokerURL("kafka://127.0.0.1:9092,[::1]:9093,broker3")
        #expect(url.hosts.map(\.host) == ["127.0.0.1", "::1", "broker3"])
        #expect(url.hosts.map(\.port) == [9092, 9093, nil])
        #expect(try BrokerURL("memory://").host == "")
    }

    @Test("redaction hides only the password", arguments: [
        ("redis://:hunter2@localhost:6379/0", "redis://:***@localhost:6379/0"),
        ("amqp://guest@localhost", "amqp://guest@localhost"),
        ("kafka://localhost:9092", "kafka://localhost:9092"),
        ("not a url", "not a url"),
        ("redis//user:hunter2@localhost", "***@localhost"),
    ])
    func redaction(input: String, expected: String) {
        #expect(BrokerURL.redact(input) == expected)
    }

    @Test("the registry selects the broker by scheme")
    func registry() throws {
        #expect(try BrokerRegistry.makeBroker(url: "memory://").name == "memory")
        #expect(BrokerRegistry.schemes.contains("memory"))
        #expect(throws: MessagingError.self) { try BrokerRegistry.makeBroker(url: "ftp://x") }
    }
}
