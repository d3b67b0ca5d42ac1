import Foundation
import Histogram

/// Combines the reports of several workers that ran the same scenario at once into one report
/// with exact totals.
///
/// Workloads with the same name and broker become one result:
/// - counters (published, confirmed, delivered, duplicates, lost, errors) and CPU seconds are summed;
/// - the measured duration is the longest worker's, and publish rate, consume rate and bytes per
///   second are recomputed from the summed counts over it; target rates are summed; peak RSS is
///   the largest worker's;
/// - latency distributions are merged bucket by bucket through their HdrHistograms, then their
///   percentiles are recomputed, so they are exact to the histogram's precision (3 significant
///   digits); the maximum is the largest, the mean the count-weighted mean;
/// - time series are aligned on the first worker's sampling interval and summed (rates, backlog);
///   their per-interval p99s, which have no histogram, take the worst worker's value;
/// - sweep points and rate-search probes are matched by target rate: rates summed, percentiles
///   the worst worker's (again no histogram to merge).
///
/// Conformance results of the same broker are combined scenario by scenario: a failure anywhere
/// fails it. The environment keeps every distinct host, CPU and OS, joined with `, `, and sums
/// the cores and memory of the distinct hosts.
///
/// ```swift
/// let merged = try ReportMerge.merge([
///     try RunReport.load(resultPath: "worker-1/report.json"),
///     try RunReport.load(resultPath: "worker-2/report.json"),
/// ])
/// try merged.encoded().write(to: URL(fileURLWithPath: "merged.json"))
/// ```
public enum ReportMerge {
    /// Merges worker reports into one.
    ///
    /// - Parameters:
    ///   - reports: The workers' reports, in any order.
    ///   - runID: The merged report's id. Default: the first report's id with `-merged`.
    /// - Returns: The combined report.
    /// - Throws: ``ReportError`` with ``ReportError/Code/cannotMerge`` when `reports` is empty or
    ///   their format versions differ in the major number.
    public static func merge(_ reports: [RunReport], runID: String? = nil) throws -> RunReport {
        guard let first = reports.first else {
            throw ReportError(.cannotMerge, "no reports to merge")
        }
        let major = { (version: String) in version.split(separator: ".").first.map(String.init) ?? version }
        if let other = reports.first(where: { major($0.schemaVersion) != major(first.schemaVersion) }) {
            throw ReportError(.cannotMerge, "report \(other.runID) has format \(other.schemaVersion) but \(first.runID) has \(first.schemaVersion); merge reports of the same format")
        }
        if reports.count == 1 { return first }

        var groups: [(key: String, results: [WorkloadResult])] = []
        var index: [String: Int] = [:]
        for report in reports {
            for result in report.workloads {
                let key = "\(result.name)\u{0}\(result.broker)"
                if let position = index[key] {
                    groups[position].results.append(result)
                } else {
                    index[key] = groups.count
                    groups.append((key, [result]))
                }
            }
        }

        var suites: [ConformanceSuiteResult] = []
        for suite in reports.flatMap(\.conformance) {
            if let position = suites.firstIndex(where: { $0.broker == suite.broker }) {
                suites[position] = merge(suites[position], suite)
            } else {
                suites.append(suite)
            }
        }

        return RunReport(
            schemaVersion: first.schemaVersion,
            runID: runID ?? "\(first.runID)-merged",
            startedAt: reports.map(\.startedAt).min() ?? first.startedAt,
            finishedAt: reports.map(\.finishedAt).max() ?? first.finishedAt,
            environment: merge(reports.map(\.environment)),
            scenario: reports.lazy.compactMap(\.scenario).first,
            workloads: groups.map { merge($0.results) },
            conformance: suites
        )
    }

    /// Merges results of one workload on one broker from several workers.
    ///
    /// ```swift
    /// let total = ReportMerge.merge([workerA.workloads[0], workerB.workloads[0]])
    /// ```
    ///
    /// - Parameter results: Results with the same name and broker; must not be empty.
    /// - Returns: One result with summed counters and merged distributions.
    public static func merge(_ results: [WorkloadResult]) -> WorkloadResult {
        precondition(!results.isEmpty, "ReportMerge.merge needs at least one workload result")
        guard results.count > 1 else { return results[0] }
        let first = results[0]
        var parameters: [String: String] = [:]
        for result in results {
            for (key, value) in result.parameters {
                if let existing = parameters[key], existing != value {
                    let values = Set(existing.components(separatedBy: ", ")).union([value])
                    parameters[key] = values.sorted().joined(separator: ", ")
                } else {
                    parameters[key] = value
                }
            }
        }
        parameters["workers"] = String(results.count)

        return WorkloadResult(
            name: first.name,
            broker: first.broker,
            parameters: parameters,
            summary: merge(results.map(\.summary)),
            publishLatency: merge(results.map(\.publishLatency)),
            endToEndLatency: merge(results.map(\.endToEndLatency)),
            publishDelay: merge(results.map(\.publishDelay)),
            timeSeries: merge(results.map(\.timeSeries)),
            sweep: merge(results.map(\.sweep)),
            rateSearch: merge(results.compactMap(\.rateSearch), of: results.count)
        )
    }

    /// Merges latency distributions bucket by bucket and recomputes their percentiles.
    ///
    /// ```swift
    /// let both = ReportMerge.merge([a.endToEndLatency, b.endToEndLatency])
    /// ```
    ///
    /// - Parameter distributions: Distributions in microseconds.
    /// - Returns: The distribution of all their values.
    public static func merge(_ distributions: [LatencyDistribution]) -> LatencyDistribution {
        let present = distributions.filter { $0.count > 0 }
        guard !present.isEmpty else { return .empty }
        var histogram = present[0].makeHistogram()
        for distribution in present.dropFirst() {
            histogram.add(distribution.makeHistogram())
        }
        var merged = LatencyDistribution(histogram: histogram)
        let count = present.reduce(0.0) { $0 + Double($1.count) }
        // The workers' own means are exact; the histogram's would be rounded to bucket midpoints.
        merged.mean = present.reduce(0.0) { $0 + $1.mean * Double($1.count) } / count
        merged.max = present.map(\.max).max() ?? merged.max
        return merged
    }

    // MARK: Parts

    private static func merge(_ summaries: [WorkloadSummary]) -> WorkloadSummary {
        let duration = summaries.map(\.durationSeconds).max() ?? 0
        let confirmed = summaries.reduce(0) { $0 + $1.confirmed }
        let delivered = summaries.reduce(0) { $0 + $1.delivered }
        let bytes = summaries.reduce(0.0) { $0 + $1.bytesPerSecond * $1.durationSeconds }
        let targets = summaries.compactMap(\.targetRate)
        let overheads = summaries.compactMap { summary in summary.runnerOverheadNanosPerMessage.map { ($0, Double(summary.confirmed)) } }
        let overheadWeight = overheads.reduce(0.0) { $0 + $1.1 }
        let overhead: Double? = overheads.isEmpty ? nil : (overheadWeight > 0
            ? overheads.reduce(0.0) { $0 + $1.0 * $1.1 } / overheadWeight
            : overheads.reduce(0.0) { $0 + $1.0 } / Double(overheads.count))
        return WorkloadSummary(
            published: summaries.reduce(0) { $0 + $1.published },
            confirmed: confirmed,
            delivered: delivered,
            duplicates: summaries.reduce(0) { $0 + $1.duplicates },
            lost: summaries.reduce(0) { $0 + $1.lost },
            errors: summaries.reduce(0) { $0 + $1.errors },
            durationSeconds: duration,
            publishRate: duration > 0 ? Double(confirmed) / duration : 0,
            consumeRate: duration > 0 ? Double(delivered) / duration : 0,
            bytesPerSecond: duration > 0 ? bytes / duration : 0,
            targetRate: targets.count == summaries.count ? targets.reduce(0, +) : nil,
            cpuSeconds: summaries.reduce(0) { $0 + $1.cpuSeconds },
            peakRSSBytes: summaries.map(\.peakRSSBytes).max() ?? 0,
            runnerOverheadNanosPerMessage: overhead
        )
    }

    private static func merge(_ series: [[TimeSample]]) -> [TimeSample] {
        let nonEmpty = series.filter { !$0.isEmpty }
        guard nonEmpty.count > 1 else { return nonEmpty.first ?? [] }
        let interval = samplingInterval(nonEmpty[0])
        var buckets: [Int64: TimeSample] = [:]
        for samples in nonEmpty {
            for sample in samples {
                let slot = Int64((sample.time / interval).rounded())
                if var existing = buckets[slot] {
                    existing.publishRate += sample.publishRate
                    existing.consumeRate += sample.consumeRate
                    existing.errorRate += sample.errorRate
                    existing.backlog += sample.backlog
                    existing.publishP99 = Swift.max(existing.publishP99, sample.publishP99)
                    existing.endToEndP99 = Swift.max(existing.endToEndP99, sample.endToEndP99)
                    buckets[slot] = existing
                } else {
                    var aligned = sample
                    aligned.time = Double(slot) * interval
                    buckets[slot] = aligned
                }
            }
        }
        return buckets.keys.sorted().compactMap { buckets[$0] }
    }

    /// The typical gap between samples: the median difference, or one second when unknown.
    private static func samplingInterval(_ samples: [TimeSample]) -> Double {
        let times = samples.map(\.time).sorted()
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }.filter { $0 > 0 }.sorted()
        guard !gaps.isEmpty else { return 1 }
        return gaps[gaps.count / 2]
    }

    private static func merge(_ sweeps: [[SweepPoint]]) -> [SweepPoint] {
        let nonEmpty = sweeps.filter { !$0.isEmpty }
        guard nonEmpty.count > 1 else { return nonEmpty.first ?? [] }
        var order: [Double] = []
        var points: [Double: SweepPoint] = [:]
        for sweep in nonEmpty {
            for point in sweep {
                if var existing = points[point.targetRate] {
                    existing.achievedRate += point.achievedRate
                    existing.endToEnd.merge(point.endToEnd, uniquingKeysWith: Swift.max)
                    existing.publish.merge(point.publish, uniquingKeysWith: Swift.max)
                    points[point.targetRate] = existing
                } else {
                    order.append(point.targetRate)
                    points[point.targetRate] = point
                }
            }
        }
        // Each worker drove the target rate, so the combined target is their sum.
        let workers = Double(nonEmpty.count)
        return order.compactMap { target in
            points[target].map { point in
                var total = point
                total.targetRate = target * workers
                return total
            }
        }
    }

    private static func merge(_ searches: [RateSearch], of workers: Int) -> RateSearch? {
        guard let first = searches.first else { return nil }
        guard searches.count > 1 else { return first }
        let notes = searches.compactMap(\.note)
        var note = notes.isEmpty ? nil : Array(Set(notes)).sorted().joined(separator: "; ")
        if searches.count < workers {
            note = [note, "only \(searches.count) of \(workers) workers searched"].compactMap { $0 }.joined(separator: "; ")
        }
        return RateSearch(
            converged: searches.allSatisfy(\.converged),
            criterion: first.criterion,
            sustainableRate: searches.reduce(0) { $0 + $1.sustainableRate },
            steps: merge(searches.map(\.steps)),
            note: note
        )
    }

    private static func merge(_ a: ConformanceSuiteResult, _ b: ConformanceSuiteResult) -> ConformanceSuiteResult {
        var merged = a
        merged.durationSeconds = Swift.max(a.durationSeconds, b.durationSeconds)
        for entry in b.scenarios {
            guard let position = merged.scenarios.firstIndex(where: { $0.scenario == entry.scenario }) else {
                merged.scenarios.append(entry)
                continue
            }
            var existing = merged.scenarios[position]
            let rank: (ConformanceEntry) -> Int = { entry in
                switch entry.outcome {
                case .failed: 2
                case .passed: 1
                case .skipped: 0
                }
            }
            if rank(entry) > rank(existing) {
                existing.status = entry.status
                existing.reason = entry.reason
            } else if rank(entry) == rank(existing), let reason = entry.reason, reason != existing.reason {
                existing.reason = [existing.reason, reason].compactMap { $0 }.joined(separator: "; ")
            }
            existing.published += entry.published
            existing.delivered += entry.delivered
            existing.duplicates += entry.duplicates
            existing.lost += entry.lost
            existing.durationSeconds = Swift.max(existing.durationSeconds, entry.durationSeconds)
            merged.scenarios[position] = existing
        }
        return merged
    }

    private static func merge(_ environments: [RunEnvironment]) -> RunEnvironment {
        func distinct(_ values: [String]) -> String {
            var seen = Set<String>()
            return values.filter { seen.insert($0).inserted }.joined(separator: ", ")
        }
        var libraries: [String: String] = [:]
        for environment in environments {
            for (name, version) in environment.clientLibraries {
                if let existing = libraries[name], !existing.components(separatedBy: ", ").contains(version) {
                    libraries[name] = existing + ", " + version
                } else if libraries[name] == nil {
                    libraries[name] = version
                }
            }
        }
        var brokers: [BrokerDescription] = []
        for broker in environments.flatMap(\.brokers) where !brokers.contains(broker) {
            brokers.append(broker)
        }
        let commits = environments.compactMap(\.gitCommit)
        // Several workers on one host share its cores and memory: count each host once.
        var hosts: [String: RunEnvironment] = [:]
        for environment in environments where hosts[environment.hostname] == nil {
            hosts[environment.hostname] = environment
        }
        return RunEnvironment(
            hostname: distinct(environments.map(\.hostname)),
            cpuModel: distinct(environments.map(\.cpuModel)),
            cores: hosts.values.reduce(0) { $0 + $1.cores },
            memoryBytes: hosts.values.reduce(0) { $0 + $1.memoryBytes },
            operatingSystem: distinct(environments.map(\.operatingSystem)),
            toolchain: distinct(environments.map(\.toolchain)),
            gitCommit: commits.isEmpty ? nil : distinct(commits),
            clientLibraries: libraries,
            brokers: brokers
        )
    }
}
