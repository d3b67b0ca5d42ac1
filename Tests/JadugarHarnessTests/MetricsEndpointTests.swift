import Foundation
import Jadugar
import JadugarHarness
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Prometheus endpoint", .timeLimit(.minutes(1)))
struct MetricsEndpointTests {
    /// A plain HTTP GET over a socket, so the test needs nothing but loopback.
    static func get(port: Int, path: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(connected == 0, "cannot connect to 127.0.0.1:\(port)")
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            response += buffer[..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }

    @Test("a scrape during a run finds non-zero counters and the broker's queue depth")
    func scrape() async throws {
        MetricsServer.bootstrapMetrics()
        let server = try MetricsServer(port: 0)
        server.start()
        defer { server.stop() }

        let manager = MessageManager(broker: InMemoryBroker())
        try await manager.connect()
        let handled = Locked(0)
        let subscription = try await manager.subscribe("metrics.test", options: SubscribeOptions(group: "metrics-group")) { _ in
            handled.increment()
        }
        for _ in 0..<25 { try await manager.publish("metrics.test", Message(string: "x")) }
        // A backlog on a second queue, which the monitor reads from the broker.
        try await manager.enqueue("metrics-backlog", Message(string: "waiting"))
        try await manager.enqueue("metrics-backlog", Message(string: "waiting"))
        let depth = await QueueDepthMonitor(broker: manager.broker, queues: ["metrics-backlog", "metrics-group"]).sample()
        #expect(depth.first { $0.name == "metrics-backlog" }?.ready == 2)
        let deadline = ContinuousClock.now + .seconds(5)
        while handled.value < 25, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }

        let body = try Self.get(port: server.port, path: "/metrics")
        #expect(body.hasPrefix("HTTP/1.0 200 OK"))
        func value(_ prefix: String) -> Double? {
            body.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        #expect((value(#"jadugar_published_total{broker="memory",topic="metrics.test"}"#) ?? 0) >= 25, "\(body.prefix(2000))")
        #expect((value(#"jadugar_delivered_total{broker="memory",queue="metrics-group",group="metrics-group"}"#) ?? 0) >= 25)
        #expect((value(#"jadugar_acked_total{broker="memory",queue="metrics-group",group="metrics-group"}"#) ?? 0) >= 25)
        #expect(value(#"jadugar_queue_depth{broker="memory",queue="metrics-backlog",state="ready"}"#) == 2)
        #expect(body.contains("jadugar_processing_duration_seconds"))
        #expect(body.contains("jadugar_end_to_end_latency_seconds"))
        #expect(try Self.get(port: server.port, path: "/other").hasPrefix("HTTP/1.0 404"))
        await subscription.cancel()
    }

    @Test("a port in use is a clear error")
    func portInUse() throws {
        let first = try MetricsServer(port: 0)
        defer { first.stop() }
        #expect(throws: MetricsServerError.self) { try MetricsServer(port: first.port) }
    }
}

final class Locked<Value: Sendable>: @unchecked Sendable {
    // Guarded by `lock`.
    private var stored: Value
    private let lock = NSLock()
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func set(_ value: Value) { lock.withLock { stored = value } }
}

extension Locked where Value == Int {
    func increment() { lock.withLock { stored += 1 } }
}
