import Foundation
import Jadugar
import JadugarBrokers
import JadugarConformance
import JadugarHarness
import Testing

/// Monitoring against the real brokers the broker script starts (`scripts/brokers up`; the URLs
/// come from `scripts/brokers env`). Serialized: the machine has two cores, and each case runs a
/// workload of its own.
@Suite("Monitoring on the real brokers", .serialized, .timeLimit(.minutes(5)))
struct RealBrokerMonitoringTests {
    static let brokers: [(name: String, variable: String)] = [
        ("redis", "JADUGAR_REDIS_URL"), ("rabbitmq", "JADUGAR_AMQP_URL"), ("kafka", "JADUGAR_KAFKA_URL"),
    ]

    static func url(_ variable: String) throws -> String {
        guard let url = ProcessInfo.processInfo.environment[variable], !url.isEmpty else {
            throw MessagingError(.invalidArgument, "\(variable) is not set: run the tests through scripts/test, or eval \"$(scripts/brokers env)\" first")
        }
        return url
    }

    @Test("a scrape during a run finds the run's counters and the broker's own queue depth", arguments: brokers.map(\.variable))
    func scrapeDuringRun(variable: String) async throws {
        JadugarBrokers.registerAll()
        MetricsServer.bootstrapMetrics()
        let url = try Self.url(variable)
        let server = try MetricsServer(port: 0)
        server.start()
        defer { server.stop() }

        let label = "scrape\(UInt32.random(in: 0...UInt32.max))"
        let scenario = try ScenarioFile.parse("""
            brokers: [\(url)]
            workloads:
              - name: \(label)
                producersPerTopic: 1
                subscriptionsPerTopic: 1
                consumersPerSubscription: 1
                messageSize: 128
                rate: 200
                warmup: 0s
                duration: 4s
                inFlight: 16
            """, file: "monitoring.yaml")
        let runner = ScenarioRunner(options: RunOptions(progress: ProgressPrinter(quiet: true)))
        let run = Task { try await runner.run(scenario) }

        // Scrape while the workload runs, until both the run's counter and the broker's depth gauge show.
        var body = ""
        var published: Double = 0
        var depthSeen = false
        for _ in 0..<60 where !(published > 0 && depthSeen) {
            try await Task.sleep(for: .milliseconds(250))
            body = try MetricsEndpointTests.get(port: server.port, path: "/metrics")
            for line in body.split(separator: "\n") where line.contains(label) {
                if line.hasPrefix("\(MessagingMetrics.Name.published){"), let value = Double(line.split(separator: " ").last ?? "") {
                    published = max(published, value)
                }
                if line.hasPrefix("\(MessagingMetrics.Name.queueDepth){") { depthSeen = true }
            }
        }
        let report = try await run.value
        let summary = try #require(report.workloads.first?.summary)
        #expect(summary.lost == 0, "\(summary.lost) confirmed messages lost on \(url)")
        #expect(published > 0, "no non-zero \(MessagingMetrics.Name.published) for \(label) in the scrape:\n\(body.prefix(3000))")
        #expect(depthSeen, "no \(MessagingMetrics.Name.queueDepth) for \(label)'s subscription, which the broker itself reports:\n\(body.prefix(3000))")
    }

    @Test("health is reported with latency and version from a live broker, and as unhealthy with a reason from a closed port", arguments: brokers.map(\.variable))
    func health(variable: String) async throws {
        JadugarBrokers.registerAll()
        let url = try Self.url(variable)
        let live = try BrokerRegistry.makeBroker(url: url)
        try await live.connect()
        let status = await live.healthCheck()
        try await live.disconnect()
        #expect(status.isHealthy, "\(url): \(status)")
        #expect(status.latency != nil)
        #expect(status.version?.isEmpty == false, "\(url) reported no version: \(status)")

        // The same kind of broker at a port where nothing listens: unhealthy, with why, in bounded time.
        let port = try #require(try BrokerURL(url).port)
        let closed = url.replacingOccurrences(of: ":\(port)", with: ":1")
        let dead = try BrokerRegistry.makeBroker(url: closed)
        let started = ContinuousClock.now
        let deadStatus = await dead.healthCheck()
        #expect(!deadStatus.isHealthy)
        #expect(deadStatus.reason?.isEmpty == false, "an unhealthy status must say why")
        #expect(ContinuousClock.now - started < .seconds(60), "a health check of a closed port must not hang")
        #expect(!(deadStatus.reason ?? "").contains("guest:guest"), "credentials leaked into the health reason")
    }

    @Test("health turns unhealthy with a reason when redis-server stops, and healthy again when it returns")
    func healthFollowsAStoppedBroker() async throws {
        JadugarBrokers.registerAll()
        // A private redis-server on a free port, so stopping it disturbs no other test.
        let port = try Self.freePort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jadugar-health-\(port)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let start = "redis-server --bind 127.0.0.1 --port \(port) --save '' --appendonly no --dir \(directory) --daemonize yes --pidfile \(directory)/redis.pid"
        let stop = "kill $(cat \(directory)/redis.pid) && while kill -0 $(cat \(directory)/redis.pid) 2>/dev/null; do sleep 0.05; done"
        try await BrokerCommand.check(start)
        defer { Task { _ = try? await BrokerCommand.run(stop) } }
        try await Self.waitForPort(port)

        let broker = try BrokerRegistry.makeBroker(url: "redis://127.0.0.1:\(port)")
        try await broker.connect()
        let up = await broker.healthCheck()
        #expect(up.isHealthy, "\(up)")

        try await BrokerCommand.check(stop)
        let down = await broker.healthCheck()
        #expect(!down.isHealthy, "healthy while redis-server is stopped: \(down)")
        #expect(down.reason?.isEmpty == false)

        try await BrokerCommand.check(start)
        try await Self.waitForPort(port)
        // The client reconnects by itself; health follows within its reconnect backoff.
        var back = await broker.healthCheck()
        for _ in 0..<100 where !back.isHealthy {
            try await Task.sleep(for: .milliseconds(200))
            back = await broker.healthCheck()
        }
        #expect(back.isHealthy, "still unhealthy after redis-server returned: \(back)")
        try await broker.disconnect()
    }

    static func freePort() throws -> Int {
        let server = try MetricsServer(port: 0)
        defer { server.stop() }
        return server.port
    }

    static func waitForPort(_ port: Int) async throws {
        for _ in 0..<200 {
            if (try? await BrokerCommand.run("redis-cli -h 127.0.0.1 -p \(port) PING", timeout: .seconds(5)))?.output.contains("PONG") == true { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw MessagingError(.timeout, "redis-server on port \(port) did not answer PING")
    }
}
