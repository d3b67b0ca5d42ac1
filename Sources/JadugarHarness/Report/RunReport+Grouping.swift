import Foundation

extension RunReport {
    /// Workload names in the order they first appear, so brokers running the same workload are
    /// shown side by side.
    var workloadNames: [String] {
        var seen = Set<String>()
        return workloads.map(\.name).filter { seen.insert($0).inserted }
    }

    /// Every broker the report mentions, in the environment's order first.
    var brokerNames: [String] {
        var seen = Set<String>()
        let all = environment.brokers.map(\.name) + workloads.map(\.broker) + conformance.map(\.broker)
        return all.filter { seen.insert($0).inserted }
    }

    /// The results of one workload, one per broker, in report order.
    func results(named name: String) -> [WorkloadResult] {
        workloads.filter { $0.name == name }
    }
}

extension ConformanceEntry {
    /// The status as one of the three known outcomes; anything else counts as a failure, so a
    /// typo in a report never turns into a pass.
    var outcome: Outcome {
        switch status {
        case "passed": .passed
        case "skipped": .skipped
        default: .failed
        }
    }

    enum Outcome {
        case passed, failed, skipped

        var symbol: String {
            switch self {
            case .passed: "✅"
            case .failed: "❌"
            case .skipped: "⏭"
            }
        }
    }
}
