import Foundation

/// The result of one `jadugar run`: the source of truth every other report format is made from.
///
/// Encoded as `report.json` (see `reports/report.schema.json`); ``schemaVersion`` changes when a
/// field changes meaning.
///
/// ```swift
/// let report = try RunReport.load(from: URL(fileURLWithPath: "reports/latest/report.json"))
/// print(report.workloads.first?.summary.publishRate ?? 0)
/// ```
public struct RunReport: Codable, Sendable, Equatable {
    /// The version of this format.
    public static let currentSchemaVersion = "1.0"

    /// The version of the format this report was written in.
    public var schemaVersion: String
    /// A unique id: UTC time and a random suffix, for example `20261129T034501Z-4f2a`.
    public var runID: String
    /// When the run started.
    public var startedAt: Date
    /// When the run finished.
    public var finishedAt: Date
    /// Where it ran.
    public var environment: RunEnvironment
    /// The scenario file, verbatim, so the report says exactly what was asked.
    public var scenario: ScenarioSource?
    /// One result per workload run (matrix entries and brokers side by side).
    public var workloads: [WorkloadResult]
    /// Conformance results, one per broker, when the scenario asked for them.
    public var conformance: [ConformanceSuiteResult]

    /// Creates a report.
    public init(schemaVersion: String = RunReport.currentSchemaVersion, runID: String, startedAt: Date, finishedAt: Date, environment: RunEnvironment, scenario: ScenarioSource?, workloads: [WorkloadResult], conformance: [ConformanceSuiteResult]) {
        self.schemaVersion = schemaVersion
        self.runID = runID
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.environment = environment
        self.scenario = scenario
        self.workloads = workloads
        self.conformance = conformance
    }

    /// Reads a report from JSON.
    public static func load(from url: URL) throws -> RunReport {
        try decoder.decode(RunReport.self, from: Data(contentsOf: url))
    }

    /// The report as compact JSON with sorted keys (histograms make pretty-printing ten times larger).
    public func encoded() throws -> Data {
        try Self.encoder.encode(self)
    }

    /// The encoder reports use: ISO 8601 dates, sorted keys, no indentation.
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// The decoder for reports.
    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// The machine, software and versions a run used.
public struct RunEnvironment: Codable, Sendable, Equatable {
    /// Host name.
    public var hostname: String
    /// CPU model, as /proc/cpuinfo names it.
    public var cpuModel: String
    /// Logical cores.
    public var cores: Int
    /// Physical memory in bytes.
    public var memoryBytes: UInt64
    /// Operating system and kernel.
    public var operatingSystem: String
    /// The Swift toolchain that built the runner.
    public var toolchain: String
    /// The git commit of the runner, when known.
    public var gitCommit: String?
    /// Client libraries and their versions (librdkafka, rabbitmq-c, hiredis).
    public var clientLibraries: [String: String]
    /// The brokers: redacted URL, name and the version each reported.
    public var brokers: [BrokerDescription]

    /// Creates an environment description.
    public init(hostname: String, cpuModel: String, cores: Int, memoryBytes: UInt64, operatingSystem: String, toolchain: String, gitCommit: String?, clientLibraries: [String: String], brokers: [BrokerDescription]) {
        self.hostname = hostname
        self.cpuModel = cpuModel
        self.cores = cores
        self.memoryBytes = memoryBytes
        self.operatingSystem = operatingSystem
        self.toolchain = toolchain
        self.gitCommit = gitCommit
        self.clientLibraries = clientLibraries
        self.brokers = brokers
    }
}

/// One broker of a run.
public struct BrokerDescription: Codable, Sendable, Equatable {
    /// The broker's name (`memory`, `redis`, `rabbitmq`, `kafka`).
    public var name: String
    /// The URL, with the password replaced by `***`.
    public var url: String
    /// The version its health check reported.
    public var version: String?

    /// Creates a description.
    public init(name: String, url: String, version: String?) {
        self.name = name
        self.url = url
        self.version = version
    }
}

/// The scenario file a run executed.
public struct ScenarioSource: Codable, Sendable, Equatable {
    /// The path it was read from.
    public var path: String
    /// Its text, verbatim.
    public var content: String

    /// Creates a source.
    public init(path: String, content: String) {
        self.path = path
        self.content = content
    }
}

/// The measurements of one workload on one broker.
public struct WorkloadResult: Codable, Sendable, Equatable {
    /// The workload's name, with its matrix values (`throughput[size=1024]`).
    public var name: String
    /// The broker's name.
    public var broker: String
    /// The effective parameters, as strings, for tables.
    public var parameters: [String: String]
    /// Totals and rates.
    public var summary: WorkloadSummary
    /// Send (intended time) to broker confirm.
    public var publishLatency: LatencyDistribution
    /// Send (intended time) to the consumer's handler.
    public var endToEndLatency: LatencyDistribution
    /// How late each send started against its schedule: the coordinated-omission signal.
    public var publishDelay: LatencyDistribution
    /// Rates, latency and backlog per interval.
    public var timeSeries: [TimeSample]
    /// A rate-vs-latency sweep, one point per target rate.
    public var sweep: [SweepPoint]
    /// The maximum-sustainable-rate search, when the rate was `max`.
    public var rateSearch: RateSearch?
    /// The faults injected during the run, in order; `nil` when the workload had none.
    public var faults: [FaultResult]?

    /// Creates a result.
    public init(name: String, broker: String, parameters: [String: String], summary: WorkloadSummary, publishLatency: LatencyDistribution, endToEndLatency: LatencyDistribution, publishDelay: LatencyDistribution, timeSeries: [TimeSample], sweep: [SweepPoint] = [], rateSearch: RateSearch? = nil, faults: [FaultResult]? = nil) {
        self.name = name
        self.broker = broker
        self.parameters = parameters
        self.summary = summary
        self.publishLatency = publishLatency
        self.endToEndLatency = endToEndLatency
        self.publishDelay = publishDelay
        self.timeSeries = timeSeries
        self.sweep = sweep
        self.rateSearch = rateSearch
        self.faults = faults
    }
}

/// What one injected fault did.
public struct FaultResult: Codable, Sendable, Equatable {
    /// The fault's name in the scenario file.
    public var name: String
    /// Seconds after the workload started when the command ran.
    public var atSeconds: Double
    /// The command, credentials redacted; empty when the fault was skipped.
    public var command: String
    /// `ran`, `failed` (the command exited non-zero) or `skipped` (no command for this broker).
    public var outcome: String
    /// Why it failed or was skipped, with the end of the command's output.
    public var detail: String?
    /// Seconds from the command's end to the first publish confirmed after it: how long the client
    /// took to reconnect and publish again. `nil` when nothing was confirmed after it.
    public var reconnectSeconds: Double?
    /// Messages confirmed when the fault fired.
    public var confirmedBefore: Int

    /// Creates a fault result.
    public init(name: String, atSeconds: Double, command: String, outcome: String, detail: String?, reconnectSeconds: Double?, confirmedBefore: Int) {
        self.name = name
        self.atSeconds = atSeconds
        self.command = command
        self.outcome = outcome
        self.detail = detail
        self.reconnectSeconds = reconnectSeconds
        self.confirmedBefore = confirmedBefore
    }
}

/// Totals and rates of a workload, warm-up excluded.
public struct WorkloadSummary: Codable, Sendable, Equatable {
    /// Messages handed to the broker.
    public var published: Int
    /// Messages the broker confirmed.
    public var confirmed: Int
    /// Distinct messages consumed.
    public var delivered: Int
    /// Deliveries beyond the first of a message.
    public var duplicates: Int
    /// Confirmed messages never delivered.
    public var lost: Int
    /// Publishes that failed.
    public var errors: Int
    /// Measured seconds (warm-up excluded).
    public var durationSeconds: Double
    /// Confirmed messages per second.
    public var publishRate: Double
    /// Delivered messages per second.
    public var consumeRate: Double
    /// Payload bytes confirmed per second.
    public var bytesPerSecond: Double
    /// The target rate in messages per second; `nil` for as fast as possible.
    public var targetRate: Double?
    /// CPU seconds the runner process used.
    public var cpuSeconds: Double
    /// Peak resident memory of the runner, in bytes.
    public var peakRSSBytes: UInt64
    /// The runner's own cost per message, in nanoseconds (measured against the embedded broker's no-op path).
    public var runnerOverheadNanosPerMessage: Double?

    /// Creates a summary.
    public init(published: Int, confirmed: Int, delivered: Int, duplicates: Int, lost: Int, errors: Int, durationSeconds: Double, publishRate: Double, consumeRate: Double, bytesPerSecond: Double, targetRate: Double?, cpuSeconds: Double, peakRSSBytes: UInt64, runnerOverheadNanosPerMessage: Double? = nil) {
        self.published = published
        self.confirmed = confirmed
        self.delivered = delivered
        self.duplicates = duplicates
        self.lost = lost
        self.errors = errors
        self.durationSeconds = durationSeconds
        self.publishRate = publishRate
        self.consumeRate = consumeRate
        self.bytesPerSecond = bytesPerSecond
        self.targetRate = targetRate
        self.cpuSeconds = cpuSeconds
        self.peakRSSBytes = peakRSSBytes
        self.runnerOverheadNanosPerMessage = runnerOverheadNanosPerMessage
    }
}

/// A latency distribution in microseconds: fixed percentiles, the quantile curve, and the
/// histogram itself, so that reports from several workers merge without loss.
public struct LatencyDistribution: Codable, Sendable, Equatable {
    /// Recorded values.
    public var count: UInt64
    /// Microseconds at p50, p75, p90, p95, p99, p99.9, p99.99.
    public var percentiles: [String: Double]
    /// The largest recorded value, microseconds.
    public var max: Double
    /// The mean, microseconds.
    public var mean: Double
    /// The HdrHistogram as `[value, count]` pairs of its non-empty buckets (microseconds).
    public var histogram: [[UInt64]]

    /// Creates a distribution.
    public init(count: UInt64, percentiles: [String: Double], max: Double, mean: Double, histogram: [[UInt64]]) {
        self.count = count
        self.percentiles = percentiles
        self.max = max
        self.mean = mean
        self.histogram = histogram
    }

    /// The percentile keys reports print, in order.
    public static let percentileKeys = ["p50", "p75", "p90", "p95", "p99", "p99.9", "p99.99"]

    /// An empty distribution.
    public static let empty = LatencyDistribution(count: 0, percentiles: [:], max: 0, mean: 0, histogram: [])
}

/// One interval of a run's time series.
public struct TimeSample: Codable, Sendable, Equatable {
    /// Seconds since the measured part began (negative during warm-up).
    public var time: Double
    /// Confirmed publishes per second in the interval.
    public var publishRate: Double
    /// Deliveries per second in the interval.
    public var consumeRate: Double
    /// Failed publishes per second in the interval.
    public var errorRate: Double
    /// Published but not yet delivered, at the end of the interval.
    public var backlog: Int
    /// p99 publish latency in the interval, microseconds.
    public var publishP99: Double
    /// p99 end-to-end latency in the interval, microseconds.
    public var endToEndP99: Double

    /// Creates a sample.
    public init(time: Double, publishRate: Double, consumeRate: Double, errorRate: Double, backlog: Int, publishP99: Double, endToEndP99: Double) {
        self.time = time
        self.publishRate = publishRate
        self.consumeRate = consumeRate
        self.errorRate = errorRate
        self.backlog = backlog
        self.publishP99 = publishP99
        self.endToEndP99 = endToEndP99
    }
}

/// One point of a rate-vs-latency sweep.
public struct SweepPoint: Codable, Sendable, Equatable {
    /// The target rate, messages per second.
    public var targetRate: Double
    /// The rate reached.
    public var achievedRate: Double
    /// End-to-end latency percentiles at that rate, microseconds.
    public var endToEnd: [String: Double]
    /// Publish latency percentiles at that rate, microseconds.
    public var publish: [String: Double]

    /// Creates a point.
    public init(targetRate: Double, achievedRate: Double, endToEnd: [String: Double], publish: [String: Double]) {
        self.targetRate = targetRate
        self.achievedRate = achievedRate
        self.endToEnd = endToEnd
        self.publish = publish
    }
}

/// The maximum-sustainable-rate search.
public struct RateSearch: Codable, Sendable, Equatable {
    /// Whether the search converged under its criterion.
    public var converged: Bool
    /// The criterion, in words.
    public var criterion: String
    /// The highest rate that held, messages per second.
    public var sustainableRate: Double
    /// Each probe: target, achieved, held or not.
    public var steps: [SweepPoint]
    /// Why it did not converge, when it did not.
    public var note: String?

    /// Creates a search result.
    public init(converged: Bool, criterion: String, sustainableRate: Double, steps: [SweepPoint], note: String?) {
        self.converged = converged
        self.criterion = criterion
        self.sustainableRate = sustainableRate
        self.steps = steps
        self.note = note
    }
}

/// The conformance results of one broker.
public struct ConformanceSuiteResult: Codable, Sendable, Equatable {
    /// The broker's name.
    public var broker: String
    /// The broker URL, redacted.
    public var url: String
    /// One entry per scenario.
    public var scenarios: [ConformanceEntry]
    /// Seconds the suite took.
    public var durationSeconds: Double

    /// Creates a result.
    public init(broker: String, url: String, scenarios: [ConformanceEntry], durationSeconds: Double) {
        self.broker = broker
        self.url = url
        self.scenarios = scenarios
        self.durationSeconds = durationSeconds
    }
}

/// One conformance scenario's outcome.
public struct ConformanceEntry: Codable, Sendable, Equatable {
    /// `category.name`.
    public var scenario: String
    /// The category.
    public var category: String
    /// `passed`, `failed` or `skipped`.
    public var status: String
    /// Why it failed or was skipped.
    public var reason: String?
    /// Messages the broker confirmed.
    public var published: Int
    /// Distinct messages delivered.
    public var delivered: Int
    /// Deliveries beyond the first of a message.
    public var duplicates: Int
    /// Confirmed messages never delivered.
    public var lost: Int
    /// Seconds it took.
    public var durationSeconds: Double

    /// Creates an entry.
    public init(scenario: String, category: String, status: String, reason: String?, published: Int, delivered: Int, duplicates: Int, lost: Int, durationSeconds: Double) {
        self.scenario = scenario
        self.category = category
        self.status = status
        self.reason = reason
        self.published = published
        self.delivered = delivered
        self.duplicates = duplicates
        self.lost = lost
        self.durationSeconds = durationSeconds
    }
}
