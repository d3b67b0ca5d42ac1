import Foundation
import Jadugar
import JadugarRabbitMQ
import Testing

/// `amqps://` against TLS listeners this suite adds to the running test broker: certificates are
/// generated with the openssl CLI into a temporary folder, and the listeners are started (and
/// stopped again) with `rabbitmqctl eval 'rabbit_networking:start_ssl_listener(...)'`, so
/// scripts/brokers needs no TLS configuration. Listeners bind 127.0.0.1 only.
@Suite("RabbitMQ over TLS", .serialized, .timeLimit(.minutes(3)))
struct RabbitMQTLSTests {
    /// A CA, a server certificate for `localhost`/`127.0.0.1`, a client certificate, and a second CA that signed nothing.
    struct Certificates {
        var folder: URL
        var ca: String { folder.appendingPathComponent("ca.pem").path }
        var otherCA: String { folder.appendingPathComponent("other-ca.pem").path }
        var serverCertificate: String { folder.appendingPathComponent("server.pem").path }
        var serverKey: String { folder.appendingPathComponent("server.key").path }
        var clientCertificate: String { folder.appendingPathComponent("client.pem").path }
        var clientKey: String { folder.appendingPathComponent("client.key").path }

        static func generate() async throws -> Certificates {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("jadugar-tls-\(Message.makeID().suffix(10))")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let certificates = Certificates(folder: folder)
            func openssl(_ arguments: [String]) async throws {
                let result = try await ProcessRunner.run("openssl", arguments, timeout: .seconds(60))
                guard result.status == 0 else {
                    throw RabbitMQTestEnvironment.MissingEnvironment(description: "openssl \(arguments.first ?? "") failed: \(result.errorOutput)")
                }
            }
            let path = { (name: String) in folder.appendingPathComponent(name).path }
            try await openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2", "-subj", "/CN=Jadugar Test CA"])
            try await openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", path("other-ca.key"), "-out", path("other-ca.pem"), "-days", "2", "-subj", "/CN=Some Other CA"])
            try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: path("server.ext"), atomically: true, encoding: .utf8)
            try await openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", path("server.key"), "-out", path("server.csr"), "-subj", "/CN=localhost"])
            try await openssl(["x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"), "-CAcreateserial", "-out", path("server.pem"), "-days", "2", "-extfile", path("server.ext")])
            try await openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", path("client.key"), "-out", path("client.csr"), "-subj", "/CN=guest"])
            try await openssl(["x509", "-req", "-in", path("client.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"), "-CAcreateserial", "-out", path("client.pem"), "-days", "2"])
            // The broker node may run as another user: it must be able to read the server's files.
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path(name))
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path)
            return certificates
        }
    }

    /// Starts a TLS listener on a free port of 127.0.0.1; returns the port.
    static func startListener(_ certificates: Certificates, requireClientCertificate: Bool) async throws -> Int {
        var lastError = ""
        for _ in 0..<10 {
            let port = Int.random(in: 30_000...39_999)
            let options = """
            [{certfile, "\(certificates.serverCertificate)"}, {keyfile, "\(certificates.serverKey)"}, {cacertfile, "\(certificates.ca)"},
             {verify, \(requireClientCertificate ? "verify_peer" : "verify_none")}, {fail_if_no_peer_cert, \(requireClientCertificate)}]
            """
            let result = try await RabbitMQTestEnvironment.rabbitmqctl(["eval", "rabbit_networking:start_ssl_listener({\"127.0.0.1\", \(port)}, \(options), 1, 1)."])
            if result.status == 0, result.output.contains("ok") { return port }
            lastError = result.output + result.errorOutput
        }
        throw RabbitMQTestEnvironment.MissingEnvironment(description: "could not start a TLS listener on the test broker: \(lastError)")
    }

    static func stopListener(_ port: Int) async {
        _ = try? await RabbitMQTestEnvironment.rabbitmqctl(["eval", "rabbit_networking:stop_tcp_listener({\"127.0.0.1\", \(port)})."])
    }

    static func configuration(port: Int, host: String = "localhost", tls: RabbitMQTLSConfiguration) throws -> RabbitMQConfiguration {
        var configuration = try RabbitMQTestEnvironment.configuration()
        configuration.endpoints = [RabbitMQConfiguration.Endpoint(host: host, port: port)]
        configuration.tls = tls
        return configuration
    }

    /// Publishes and consumes one message over the connection.
    static func roundTrip(_ broker: RabbitMQBroker) async throws {
        let queue = RabbitMQTestEnvironment.uniqueName("tls")
        try await broker.createQueue(queue, options: QueueOptions(durable: false))
        let message = Message(string: "over TLS")
        try await broker.send(message, toQueue: queue)
        let delivery = try #require(try await getEventually(broker, queue))
        #expect(delivery.message.id == message.id)
        #expect(delivery.message.payloadString == "over TLS")
        try await delivery.ack()
        try await broker.deleteQueue(queue)
    }

    @Test("amqps with the CA verifies the broker's certificate and host name; a wrong CA is refused")
    func serverVerification() async throws {
        _ = try RabbitMQTestEnvironment.url()
        let certificates = try await Certificates.generate()
        defer { try? FileManager.default.removeItem(at: certificates.folder) }
        let port = try await Self.startListener(certificates, requireClientCertificate: false)
        do {
            // Verified: the CA signed the certificate, which names localhost.
            let verified = RabbitMQBroker(configuration: try Self.configuration(port: port, tls: RabbitMQTLSConfiguration(caCertificatePath: certificates.ca)))
            try await verified.connect()
            try await Self.roundTrip(verified)
            try await verified.disconnect()

            // The same through a URL.
            let url = "amqps://guest:guest@localhost:\(port)/%2f?cacertfile=\(certificates.ca)"
            let fromURL = try RabbitMQBroker(url: url)
            #expect(fromURL.configuration.tls?.caCertificatePath == certificates.ca)
            try await fromURL.connect()
            #expect(await fromURL.healthCheck().isHealthy)
            try await fromURL.disconnect()

            // A CA that did not sign the certificate: refused, and retrying cannot help.
            let untrusted = RabbitMQBroker(configuration: try Self.configuration(port: port, tls: RabbitMQTLSConfiguration(caCertificatePath: certificates.otherCA)))
            let refused = await #expect(throws: MessagingError.self) { try await untrusted.connect() }
            #expect(refused?.code == .connectionFailed)
            #expect(refused?.isRetriable == false)
            #expect(refused?.brokerCode?.hasPrefix("SSL") == true, "\(String(describing: refused))")

            // Verification off: any certificate is accepted.
            let unverified = RabbitMQBroker(configuration: try Self.configuration(port: port, host: "127.0.0.1", tls: RabbitMQTLSConfiguration(verifyPeer: false)))
            try await unverified.connect()
            try await Self.roundTrip(unverified)
            try await unverified.disconnect()

            // rabbitmq-c 0.11 cannot match a certificate to an IP address: connect by name, or
            // keep the chain check and turn the name check off.
            let byAddress = RabbitMQBroker(configuration: try Self.configuration(port: port, host: "127.0.0.1", tls: RabbitMQTLSConfiguration(caCertificatePath: certificates.ca)))
            let mismatch = await #expect(throws: MessagingError.self) { try await byAddress.connect() }
            #expect(mismatch?.brokerCode == "SSL_HOSTNAME_VERIFY_FAILED")
            let chainOnly = RabbitMQBroker(configuration: try Self.configuration(port: port, host: "127.0.0.1", tls: RabbitMQTLSConfiguration(caCertificatePath: certificates.ca, verifyHostname: false)))
            try await chainOnly.connect()
            try await chainOnly.disconnect()
        } catch {
            await Self.stopListener(port)
            throw error
        }
        await Self.stopListener(port)
    }

    @Test("a listener that requires a client certificate accepts ours and refuses a connection without one")
    func clientCertificate() async throws {
        _ = try RabbitMQTestEnvironment.url()
        let certificates = try await Certificates.generate()
        defer { try? FileManager.default.removeItem(at: certificates.folder) }
        let port = try await Self.startListener(certificates, requireClientCertificate: true)
        do {
            let withCertificate = RabbitMQBroker(configuration: try Self.configuration(port: port, tls: RabbitMQTLSConfiguration(
                caCertificatePath: certificates.ca, clientCertificatePath: certificates.clientCertificate, clientKeyPath: certificates.clientKey
            )))
            try await withCertificate.connect()
            try await Self.roundTrip(withCertificate)
            try await withCertificate.disconnect()

            let without = RabbitMQBroker(configuration: try Self.configuration(port: port, tls: RabbitMQTLSConfiguration(caCertificatePath: certificates.ca)))
            let refused = await #expect(throws: MessagingError.self) { try await without.connect() }
            #expect(refused?.code == .connectionFailed)
            #expect(!without.isConnected)
        } catch {
            await Self.stopListener(port)
            throw error
        }
        await Self.stopListener(port)
    }
}
