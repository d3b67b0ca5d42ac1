import Foundation
import Jadugar

/// One named conformance scenario: what it needs from the broker and what it checks.
public struct ConformanceScenario: Sendable {
    /// `category.name`, for example `delivery.before-and-after-subscribe`.
    public let name: String
    /// The category: delivery, concurrency, acknowledgement, groups, retry, request-reply, work-queue, reconnect, errors.
    public let category: String
    /// What the scenario checks, in one sentence.
    public let summary: String
    /// Features the broker must declare, or the scenario is skipped.
    public let requires: Set<BrokerFeature>
    /// Whether it needs ``ConformanceConfiguration/restartBroker``.
    public let needsRestart: Bool
    let body: @Sendable (ScenarioContext) async throws -> Void

    /// Creates a scenario.
    public init(_ name: String, _ summary: String, requires: Set<BrokerFeature> = [], needsRestart: Bool = false, body: @escaping @Sendable (ScenarioContext) async throws -> Void) {
        self.name = name
        self.category = String(name.prefix { $0 != "." })
        self.summary = summary
        self.requires = requires
        self.needsRestart = needsRestart
        self.body = body
    }
}

/// The universal conformance suite: the same scenarios for every broker, skipped only for a
/// capability the broker declares it lacks.
///
/// ```swift
/// let suite = ConformanceSuite(configuration: ConformanceConfiguration(scale: .short))
/// let report = await suite.run { InMemoryBroker() }
/// print(report.passed, report.failed, report.skipped)
/// ```
public struct ConformanceSuite: Sendable {
    /// How the suite runs.
    public var configuration: ConformanceConfiguration
    /// The scenarios it runs.
    public var scenarios: [ConformanceScenario]

    /// Creates the suite with every scenario (filtered by ``ConformanceConfiguration/only``).
    public init(configuration: ConformanceConfiguration = ConformanceConfiguration()) {
        self.configuration = configuration
        let all = Self.allScenarios
        scenarios = configuration.only.isEmpty ? all : all.filter { scenario in configuration.only.contains { scenario.name.contains($0) } }
    }

    /// Every scenario, in the order they run.
    public static var allScenarios: [ConformanceScenario] {
        DeliveryScenarios.all + ConcurrencyScenarios.all + AcknowledgementScenarios.all + GroupScenarios.all
            + RetryScenarios.all + RequestReplyScenarios.all + WorkQueueScenarios.all + ReconnectScenarios.all + ErrorScenarios.all
    }

    /// Runs every scenario (``ConformanceConfiguration/parallelRuns`` copies of the suite at once) against fresh clients from `factory`.
    public func run(factory: @escaping BrokerFactory) async -> ConformanceReport {
        let start = ContinuousClock.now
        var name = "broker"
        if let probe = try? await factory() { name = probe.name }
        let runs = max(1, configuration.parallelRuns)
        let results = await withTaskGroup(of: [ConformanceResult].self) { group in
            for _ in 0..<runs {
                group.addTask {
                    var results: [ConformanceResult] = []
                    for scenario in scenarios { results.append(await run(scenario, factory: factory)) }
                    return results
                }
            }
            var all: [ConformanceResult] = []
            for await results in group { all += results }
            return all
        }
        return ConformanceReport(broker: name, results: results, duration: ContinuousClock.now - start)
    }

    /// Runs the scenario with exactly this name.
    ///
    /// ```swift
    /// let result = await ConformanceSuite().run(named: "delivery.topic-isolation") { InMemoryBroker(sharedName: "t") }
    /// ```
    public func run(named name: String, factory: @escaping BrokerFactory) async -> ConformanceResult {
        guard let scenario = Self.allScenarios.first(where: { $0.name == name }) else {
            return ConformanceResult(scenario: name, category: "unknown", outcome: .failed("no scenario is named '\(name)'"), counters: ConformanceCounters(), duration: .zero)
        }
        return await run(scenario, factory: factory)
    }

    /// The names of every scenario, for parameterized tests.
    public static var scenarioNames: [String] { allScenarios.map(\.name) }

    /// Runs one scenario against a fresh client.
    public func run(_ scenario: ConformanceScenario, factory: @escaping BrokerFactory) async -> ConformanceResult {
        let start = ContinuousClock.now
        func result(_ outcome: ConformanceOutcome, _ counters: ConformanceCounters = ConformanceCounters()) -> ConformanceResult {
            ConformanceResult(scenario: scenario.name, category: scenario.category, outcome: outcome, counters: counters, duration: ContinuousClock.now - start)
        }
        let broker: any MessageBroker
        do {
            broker = try await factory()
        } catch {
            return result(.failed("could not create the broker client: \(error)"))
        }
        let missing = scenario.requires.filter { !broker.capabilities.supports($0) }.sorted()
        if !missing.isEmpty {
            return result(.skipped("broker declares no \(missing.map(\.name).joined(separator: ", "))"))
        }
        if scenario.needsRestart, configuration.restartBroker == nil {
            return result(.skipped("no restart command was given for this broker"))
        }
        do {
            try await broker.connect()
        } catch {
            return result(.failed("connect failed: \(error)"))
        }
        let context = ScenarioContext(broker: broker, factory: factory, configuration: configuration, scenario: scenario.name)
        let outcome: ConformanceOutcome
        do {
            _ = try await context.within(configuration.scenarioTimeout, "the scenario") {
                try await scenario.body(context)
                return true
            }
            outcome = .passed
        } catch {
            outcome = .failed(String(describing: error))
        }
        await context.closeExtras()
        try? await broker.disconnect()
        var counters = context.counters
        if counters.lost > 0, outcome.isPassed {
            return result(.failed("\(counters.lost) confirmed messages were never delivered"), counters)
        }
        counters.lost = max(counters.lost, 0)
        return result(outcome, counters)
    }
}
