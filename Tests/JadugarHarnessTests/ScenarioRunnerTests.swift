import Foundation
import Jadugar
import JadugarHarness
import Testing

@Suite("Scenario runner on the embedded broker", .serialized, .timeLimit(.minutes(2)))
struct ScenarioRunnerTests {
    func run(_ yaml: String) async throws -> RunReport {
        let scenario = try ScenarioFile.parse(yaml, file: "test.yaml")
        return try await ScenarioRunner(options: RunOptions(progress: ProgressPrinter(quiet: true))).run(scenario)
    }

    @Test("a counted run delivers every message to every subscription, exactly")
    func counted() async throws {
        let report = try await run("""
            workloads:
              - name: counted
                producersPerTopic: 3
                subscriptionsPerTopic: 2
                consumersPerSubscription: 2
                messageSize: 100
                messages: 3000
                warmup: 0s
                inFlight: 8
            """)
        let summary = try #require(report.workloads.first?.summary)
        #expect(summary.published == 3000 && summary.confirmed == 3000)
        #expect(summary.delivered == 6000, "two subscriptions each get every message")
        #expect(summary.lost == 0 && summary.duplicates == 0 && summary.errors == 0)
        let workload = try #require(report.workloads.first)
        #expect(workload.endToEndLatency.count == 6000)
        #expect(workload.publishLatency.count == 3000)
        #expect(workload.endToEndLatency.percentiles["p99"] != nil)
        #expect(report.environment.brokers.first?.name == "memory")
        #expect(report.environment.cores > 0)
        #expect(report.scenario?.content.contains("counted") == true)
    }

    @Test("a fixed rate is kept, and latency is measured from intended send times")
    func fixedRate() async throws {
        let report = try await run("""
            workloads:
              - name: paced
                messageSize: 64
                rate: 2000
                warmup: 200ms
                duration: 2s
                inFlight: 4
            """)
        let workload = try #require(report.workloads.first)
        // Speed is not asserted (a loaded machine falls behind, and the delay histogram shows it);
        // what must hold is that the limiter never runs ahead of its schedule.
        #expect(workload.summary.publishRate <= 2000 * 1.05, "published at \(workload.summary.publishRate)/s")
        #expect(workload.summary.confirmed <= 4400)
        #expect(workload.publishDelay.count == UInt64(workload.publishLatency.count), "one delay sample per measured send")
        #expect(workload.summary.targetRate == 2000)
        #expect(workload.timeSeries.count >= 2)
    }

    @Test("a backlog builds, then drains to the end")
    func backlog() async throws {
        let report = try await run("""
            workloads:
              - name: backlog
                producersPerTopic: 2
                messageSize: 64
                backlog: {messages: 4000, drainRate: max}
            """)
        let summary = try #require(report.workloads.first?.summary)
        #expect(summary.confirmed == 4000 && summary.delivered == 4000 && summary.lost == 0)
    }

    @Test("a sweep reports one point per rate")
    func sweep() async throws {
        let report = try await run("""
            workloads:
              - name: sweep
                messageSize: 64
                rate: [500, 1000]
                warmup: 100ms
                duration: 1s
            """)
        let sweep = try #require(report.workloads.first?.sweep)
        #expect(sweep.map(\.targetRate) == [500, 1000])
        #expect(sweep.allSatisfy { $0.achievedRate > 0 && $0.achievedRate <= 1.05 * $0.targetRate })
    }

    @Test("conformance results land in the report")
    func conformance() async throws {
        let report = try await run("""
            conformance:
              scale: short
              only: [delivery.topic-isolation, retry.priority-order]
            """)
        let suite = try #require(report.conformance.first)
        #expect(suite.broker == "memory")
        #expect(suite.scenarios.map(\.status) == ["passed", "passed"])
    }
}
