import Foundation
import Histogram
import JadugarHarness
import Testing

/// A deterministic random number generator (SplitMix64), so fixtures are the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Realistic reports for the report tests: several brokers, time series with a warm-up, a
/// rate-vs-latency sweep, a rate search, and conformance results with failures and skips.
///
/// Set `JADUGAR_REPORT_SAMPLE_DIR` when running the tests to have ``ReportHTMLTests`` write the
/// rendered fixture there, for looking at it in a browser.
enum ReportFixture {
    static let start = Date(timeIntervalSince1970: 1_795_923_901) // 2026-11-29T03:45:01Z

    /// Latency samples in microseconds: log-normal around `median`, with a heavy tail.
    static func latencies(count: Int, median: Double, spread: Double = 0.45, seed: UInt64) -> [UInt64] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in
            let u1 = Double.random(in: Double.ulpOfOne..<1, using: &generator)
            let u2 = Double.random(in: 0..<1, using: &generator)
            let normal = sqrt(-2 * log(u1)) * cos(2 * .pi * u2)
            var value = median * exp(spread * normal)
            // One in a thousand stalls for a GC pause, fsync or rebalance: the tail the nines axis is for.
            if Double.random(in: 0..<1, using: &generator) < 0.001 {
                value *= Double.random(in: 8..<40, using: &generator)
            }
            return UInt64(value.rounded())
        }
    }

    static func histogram(_ values: [UInt64]) -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(highestTrackableValue: LatencyDistribution.highestTrackableMicroseconds)
        for value in values { histogram.record(value) }
        return histogram
    }

    static func distribution(count: Int = 20_000, median: Double, seed: UInt64) -> LatencyDistribution {
        LatencyDistribution(histogram: histogram(latencies(count: count, median: median, seed: seed)))
    }

    struct BrokerProfile {
        var name: String
        var rate: Double
        var publishMedian: Double
        var endToEndMedian: Double
        var seed: UInt64
    }

    static let profiles = [
        BrokerProfile(name: "memory", rate: 182_000, publishMedian: 38, endToEndMedian: 95, seed: 1),
        BrokerProfile(name: "redis", rate: 61_500, publishMedian: 310, endToEndMedian: 720, seed: 2),
        BrokerProfile(name: "rabbitmq", rate: 24_800, publishMedian: 1_150, endToEndMedian: 2_400, seed: 3),
        BrokerProfile(name: "kafka", rate: 88_000, publishMedian: 2_900, endToEndMedian: 5_800, seed: 4),
    ]

    static func timeSeries(_ profile: BrokerProfile, seconds: Int = 60, warmUp: Int = 5) -> [TimeSample] {
        var generator = SeededGenerator(seed: profile.seed &* 7919)
        var backlog = 0.0
        return (-warmUp..<seconds).map { second in
            let ramp = second < 0 ? Double(second + warmUp + 1) / Double(warmUp + 1) : 1
            let wobble = Double.random(in: 0.93...1.04, using: &generator)
            // A dip at 30 s (a broker-side pause) that the consumers catch up after.
            let dip = (30..<33).contains(second) ? 0.55 : 1
            let publish = profile.rate * ramp * wobble * dip
            // Consumers fall behind during the dip, then drain the backlog at up to 12% above the publish rate.
            let consume = (30..<33).contains(second)
                ? publish * 0.8
                : publish * Double.random(in: 0.995...1.0, using: &generator) + Swift.min(backlog, publish * 0.12)
            backlog = Swift.max(0, backlog + publish - consume)
            let spike = (30..<34).contains(second) ? 6.0 : 1
            return TimeSample(
                time: Double(second),
                publishRate: publish,
                consumeRate: consume,
                errorRate: second == 31 ? 12 : 0,
                backlog: Int(backlog),
                publishP99: profile.publishMedian * 2.6 * wobble * spike,
                endToEndP99: profile.endToEndMedian * 2.8 * wobble * spike
            )
        }
    }

    static func sweep(_ profile: BrokerProfile) -> [SweepPoint] {
        let fractions = [0.1, 0.25, 0.5, 0.7, 0.85, 0.95, 1.05, 1.2]
        return fractions.map { fraction in
            let target = (profile.rate * fraction / 1000).rounded() * 1000
            let load = Swift.min(fraction, 0.999)
            // Queueing: latency grows like 1 / (1 − load), then explodes past saturation.
            let factor = fraction < 1 ? 1 / (1 - load) : 40 * fraction
            let achieved = fraction < 1 ? target * 0.998 : profile.rate * 0.97
            func percentiles(_ median: Double) -> [String: Double] {
                ["p50": median * factor * 0.6, "p90": median * factor * 1.4, "p99": median * factor * 2.5, "p99.9": median * factor * 4.8]
            }
            return SweepPoint(targetRate: target, achievedRate: achieved, endToEnd: percentiles(profile.endToEndMedian), publish: percentiles(profile.publishMedian))
        }
    }

    static func workload(_ name: String, _ profile: BrokerProfile, parameters: [String: String], size: Double = 1024, targetRate: Double? = nil, withSweep: Bool = false, withSearch: Bool = false) -> WorkloadResult {
        let duration = 60.0
        var profile = profile
        if let targetRate { profile.rate = Swift.min(profile.rate, targetRate * 0.999) }
        let confirmed = Int(profile.rate * duration)
        let lost = 0
        let publish = distribution(median: profile.publishMedian, seed: profile.seed &* 31)
        let endToEnd = distribution(median: profile.endToEndMedian, seed: profile.seed &* 37)
        let delay = distribution(count: 5_000, median: 4, seed: profile.seed &* 41)
        let search = withSearch ? RateSearch(
            converged: true,
            criterion: "achieved ≥ 98% of target and end-to-end p99 ≤ 50 ms",
            sustainableRate: profile.rate * 0.95,
            steps: sweep(profile).filter { $0.targetRate >= profile.rate * 0.5 },
            note: nil
        ) : nil
        return WorkloadResult(
            name: name,
            broker: profile.name,
            parameters: parameters,
            summary: WorkloadSummary(
                published: confirmed + 17, confirmed: confirmed, delivered: confirmed - lost, duplicates: profile.name == "kafka" ? 42 : 0,
                lost: lost, errors: 17, durationSeconds: duration, publishRate: Double(confirmed) / duration,
                consumeRate: Double(confirmed - lost) / duration, bytesPerSecond: Double(confirmed) * size / duration,
                targetRate: targetRate, cpuSeconds: 71.4, peakRSSBytes: 187_000_000,
                runnerOverheadNanosPerMessage: profile.name == "memory" ? 412 : nil
            ),
            publishLatency: publish,
            endToEndLatency: endToEnd,
            publishDelay: delay,
            timeSeries: timeSeries(profile),
            sweep: withSweep ? sweep(profile) : [],
            rateSearch: search,
            faults: withSearch ? [
                FaultResult(name: "restart the broker", atSeconds: 20.1, command: "scripts/brokers restart \(profile.name)", outcome: "ran", detail: nil, reconnectSeconds: 2.4, confirmedBefore: confirmed / 3),
                FaultResult(name: "drop connections", atSeconds: 40, command: "", outcome: "skipped", detail: "no command for \(profile.name) in this fault", reconnectSeconds: nil, confirmedBefore: confirmed * 2 / 3),
            ] : nil
        )
    }

    static func conformance(broker: String, url: String, failing: Set<String>, skipped: [String: String]) -> ConformanceSuiteResult {
        let scenarios = [
            ("delivery", "at-least-once"), ("delivery", "ordering-per-key"), ("delivery", "large-payload"),
            ("acknowledgement", "nack-requeue"), ("acknowledgement", "ack-timeout"),
            ("retry", "exponential-backoff"), ("dead-letter", "after-max-attempts"),
            ("request-reply", "timeout"), ("request-reply", "correlation"),
            ("work-queue", "competing-consumers"), ("reconnect", "broker-restart"), ("groups", "rebalance"),
        ]
        let entries = scenarios.map { category, name in
            let id = "\(category).\(name)"
            if let reason = skipped[id] {
                return ConformanceEntry(scenario: id, category: category, status: "skipped", reason: reason, published: 0, delivered: 0, duplicates: 0, lost: 0, durationSeconds: 0)
            }
            if failing.contains(id) {
                return ConformanceEntry(scenario: id, category: category, status: "failed", reason: "expected 1000 deliveries within 10 s, got 997 (3 lost)", published: 1000, delivered: 997, duplicates: 0, lost: 3, durationSeconds: 10.02)
            }
            return ConformanceEntry(scenario: id, category: category, status: "passed", reason: nil, published: 1000, delivered: 1000, duplicates: 0, lost: 0, durationSeconds: 0.84)
        }
        return ConformanceSuiteResult(broker: broker, url: url, scenarios: entries, durationSeconds: 41.7)
    }

    /// A full report: four brokers side by side on a throughput workload, a fixed-rate latency
    /// workload on two, a sweep on three, a rate search on two, and two conformance suites.
    static func report(runID: String = "20261129T034501Z-4f2a") -> RunReport {
        var report = shared
        report.runID = runID
        return report
    }

    /// Built once: recording the latencies takes a while in debug builds.
    private static let shared = makeReport()

    static func makeReport() -> RunReport {
        let runID = "20261129T034501Z-4f2a"
        let throughput = profiles.map { workload("throughput[size=1024]", $0, parameters: ["size": "1024", "producers": "4", "consumers": "4", "rate": "max"]) }
        let sweepWorkloads = profiles.prefix(3).map { workload("rate-vs-latency", $0, parameters: ["size": "256", "rates": "10%…120%"], size: 256, withSweep: true) }
        let search = [profiles[1], profiles[3]].map { workload("max-rate", $0, parameters: ["size": "512", "rate": "max"], size: 512, withSearch: true) }
        let latency = profiles.prefix(2).map { workload("latency[rate=10000]", $0, parameters: ["size": "128", "rate": "10000"], size: 128, targetRate: 10_000) }
        return RunReport(
            runID: runID,
            startedAt: start,
            finishedAt: start.addingTimeInterval(1_342),
            environment: RunEnvironment(
                hostname: "ci-runner-7",
                cpuModel: "AMD EPYC 7B13",
                cores: 2,
                memoryBytes: 8_589_934_592,
                operatingSystem: "Debian GNU/Linux 12 (bookworm), Linux 6.1.0-27-amd64",
                toolchain: "Swift version 6.3.1 (swift-6.3.1-RELEASE)",
                gitCommit: "d2de993c0ffee1234567890abcdef1234567890",
                clientLibraries: ["librdkafka": "2.0.2", "rabbitmq-c": "0.11.0", "hiredis": "0.14.1"],
                brokers: [
                    BrokerDescription(name: "memory", url: "memory://", version: "jadugar 0.1.0"),
                    BrokerDescription(name: "redis", url: "redis://:***@127.0.0.1:6379/0", version: "7.0.15"),
                    BrokerDescription(name: "rabbitmq", url: "amqp://guest:***@127.0.0.1:5672/%2f", version: "3.10.8"),
                    BrokerDescription(name: "kafka", url: "kafka://127.0.0.1:9092", version: nil),
                ]
            ),
            scenario: ScenarioSource(path: "Scenarios/default.yaml", content: "name: default\nworkloads:\n  - name: throughput\n    size: 1024\n    rate: max\n"),
            workloads: throughput + latency + sweepWorkloads + search,
            conformance: [
                conformance(broker: "memory", url: "memory://", failing: [], skipped: ["reconnect.broker-restart": "the embedded broker cannot be restarted"]),
                conformance(broker: "redis", url: "redis://:***@127.0.0.1:6379/0", failing: ["groups.rebalance"], skipped: ["request-reply.timeout": "capability requestReply not declared"]),
            ]
        )
    }

    /// A report with no optional field set and nothing but one small workload.
    static func minimalReport() -> RunReport {
        var result = workload("smoke", profiles[0], parameters: [:])
        result.timeSeries = []
        result.summary.runnerOverheadNanosPerMessage = nil
        return RunReport(
            runID: "minimal-1",
            startedAt: start,
            finishedAt: start.addingTimeInterval(5),
            environment: RunEnvironment(hostname: "h", cpuModel: "c", cores: 1, memoryBytes: 1, operatingSystem: "o", toolchain: "t", gitCommit: nil, clientLibraries: [:], brokers: []),
            scenario: nil,
            workloads: [result],
            conformance: []
        )
    }
}

@Suite("Report fixture")
struct ReportFixtureTests {
    @Test("the fixture is deterministic and internally consistent")
    func consistent() throws {
        let a = ReportFixture.report()
        let b = ReportFixture.makeReport()
        #expect(a == b)
        #expect(a.workloads.count == 11)
        for result in a.workloads {
            #expect(result.endToEndLatency.count == 20_000)
            #expect(result.endToEndLatency.histogram.reduce(0) { $0 + $1[1] } == result.endToEndLatency.count)
            let p50 = try #require(result.endToEndLatency.percentiles["p50"])
            let p99 = try #require(result.endToEndLatency.percentiles["p99"])
            #expect(p50 < p99)
        }
    }
}
