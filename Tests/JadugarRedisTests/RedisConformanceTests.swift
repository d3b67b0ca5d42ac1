import Foundation
import Jadugar
import JadugarConformance
import JadugarRedis
import Testing

extension RedisTests {
    /// The universal conformance suite against the real redis-server: one test case per scenario,
    /// each in a key space of its own (deleted afterwards).
    @Suite("Conformance: Redis broker")
    struct Conformance {
        @Test("scenario", arguments: ConformanceSuite.scenarioNames)
        func scenario(_ name: String) async throws {
            let url = try RedisTestEnvironment.url()
            // For local iteration only: JADUGAR_REDIS_SCENARIOS=restart,many-topics runs just those.
            if let only = ProcessInfo.processInfo.environment["JADUGAR_REDIS_SCENARIOS"], !only.isEmpty,
                !only.split(separator: ",").contains(where: { name.contains($0) })
            {
                try Test.cancel("skipped: not in JADUGAR_REDIS_SCENARIOS=\(only)")
            }
            let prefix = RedisTestEnvironment.uniquePrefix("cf")
            let configuration = try await RedisTestEnvironment.configuration(prefix: prefix)
            var suiteConfiguration = ConformanceConfiguration()
            if RedisTestEnvironment.brokerScript != nil {
                suiteConfiguration.restartBroker = { try await RedisTestEnvironment.restartRedis() }
            }
            let result = await ConformanceSuite(configuration: suiteConfiguration).run(named: name) {
                try RedisBroker(url: url, configuration: configuration)
            }
            try await RedisCLI.deleteKeys(prefix: prefix)
            if result.outcome.isSkipped {
                try Test.cancel(Comment(rawValue: "skipped: \(result.outcome.reason ?? "")"))
            }
            #expect(result.outcome.isPassed, "\(name): \(result.outcome)")
            #expect(result.counters.lost == 0, "\(name) lost \(result.counters.lost) messages")
        }

        @Test("stress: the suite (short scale) twice at once in one key space, nothing lost")
        func stress() async throws {
            let url = try RedisTestEnvironment.url()
            let prefix = RedisTestEnvironment.uniquePrefix("stress")
            let configuration = try await RedisTestEnvironment.configuration(prefix: prefix)
            // No restart command: restarting Redis under two concurrent runs is the reconnect tests' job.
            let report = await ConformanceSuite(configuration: ConformanceConfiguration(scale: .short, parallelRuns: 2)).run {
                try RedisBroker(url: url, configuration: configuration)
            }
            try await RedisCLI.deleteKeys(prefix: prefix)
            #expect(report.results.count == 2 * ConformanceSuite.allScenarios.count)
            #expect(report.failed == 0, "\(report.results.filter(\.outcome.isFailed).map { "\($0.scenario): \($0.outcome)" })")
            #expect(report.totals.lost == 0)
        }

        @Test("the declared capability gaps are exactly the skipped scenarios")
        func skipsAreDeclaredGaps() async throws {
            let url = try RedisTestEnvironment.url()
            let broker = try RedisBroker(url: url, configuration: await RedisTestEnvironment.configuration(prefix: "unused:"))
            let skipped = ConformanceSuite.allScenarios.filter { !$0.requires.allSatisfy(broker.capabilities.supports) }.map(\.name)
            #expect(skipped == ["groups.replay-for-new-group"], "skipped for missing capabilities: \(skipped)")
        }
    }
}
