import Foundation
import JadugarHarness
import Testing

@Suite("Scenario files")
struct ScenarioFileTests {
    static let shipped = ["default", "conformance", "throughput", "latency", "rate-vs-latency", "max-rate", "concurrency", "backlog", "soak"]

    static var scenariosFolder: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Scenarios")
    }

    @Test("every shipped scenario parses", arguments: shipped)
    func shippedScenarios(name: String) throws {
        let scenario = try ScenarioFile.load(path: Self.scenariosFolder.appendingPathComponent("\(name).yaml").path)
        #expect(scenario.name == name)
        #expect(!scenario.workloads.isEmpty || scenario.conformance != nil)
    }

    @Test("the matrix expands into the cartesian product with labelled names")
    func matrix() throws {
        let scenario = try ScenarioFile.load(path: Self.scenariosFolder.appendingPathComponent("concurrency.yaml").path)
        #expect(scenario.workloads.count == 12)
        #expect(Set(scenario.workloads.map(\.name)).count == 12)
        let one = try #require(scenario.workloads.first { $0.name == "concurrency[consumersPerSubscription=2,producersPerTopic=4]" })
        #expect(one.producersPerTopic == 4 && one.consumersPerSubscription == 2 && one.messageSize == .fixed(512))
    }

    @Test("values: sizes, durations, rates, keys, acks, distributions, backlog")
    func values() throws {
        let text = """
            name: t
            workloads:
              - name: w
                messageSize:
                  - {size: 1KiB, weight: 3}
                  - {size: 100, weight: 1}
                rate: [100, 2_000]
                keys: round-robin:8
                ack: multi:16
                warmup: 250ms
                duration: 2m
                consumerDelay: 1ms
              - name: b
                backlog: {messages: 5000, drainRate: 1000}
              - name: m
                rate: max
                messages: 1000
            """
        let scenario = try ScenarioFile.parse(text, file: "t.yaml")
        let w = scenario.workloads[0]
        let expectedMean: Double = (1024.0 * 3 + 100) / 4
        #expect(w.messageSize.mean == expectedMean)
        #expect(w.rate == .sweep([100, 2000]))
        #expect(w.keys == .roundRobin(8) && w.ack == .multi(16))
        #expect(w.warmup == .milliseconds(250) && w.duration == .seconds(120) && w.consumerDelay == .milliseconds(1))
        #expect(scenario.workloads[1].backlog == Workload.Backlog(messages: 5000, drainRate: 1000))
        #expect(scenario.workloads[2].rate == .max && scenario.workloads[2].messages == 1000 && scenario.workloads[2].duration == nil)
        #expect(scenario.brokers == ["memory://"])
    }

    @Test("errors name the file, the line and the field", arguments: [
        ("workloads:\n  - name: a\n    rate: fast\n", 3, "workloads[0].rate", "expected a number"),
        ("workloads:\n  - name: a\n    prodcuersPerTopic: 2\n", 3, "workloads[0].prodcuersPerTopic", "did you mean 'producersPerTopic'"),
        ("workloads:\n  - name: a\n    messageSize: huge\n", 3, "workloads[0].messageSize", "expected a size"),
        ("workloads:\n  - name: a\n    duration: soon\n", 3, "workloads[0].duration", "expected a duration"),
        ("workloads:\n  - name: a\n    topics: 0\n", 3, "workloads[0].topics", "at least 1"),
        ("workloads:\n  - name: a\n    ack: sometimes\n", 3, "workloads[0].ack", "expected 'auto'"),
        ("workloads:\n  - name: a\n  - name: a\n", nil, "workloads", "two workloads are named 'a'"),
        ("workloads:\n  - topics: 2\n", 2, "workloads[0].name", "needs a name"),
        ("brokers: [localhost]\nworkloads:\n  - name: a\n", 1, "brokers[0]", "not a broker URL"),
        ("name: x\n", 1, "workloads", "nothing to run"),
        ("workloads: [\n", nil, "", "not valid YAML"),
    ] as [(String, Int?, String, String)])
    func errors(text: String, line: Int?, field: String, message: String) {
        do {
            _ = try ScenarioFile.parse(text, file: "bad.yaml")
            Issue.record("accepted: \(text)")
        } catch let error as ScenarioError {
            #expect(error.file == "bad.yaml")
            if let line { #expect(error.line == line, "\(error)") }
            #expect(error.field == field, "\(error)")
            #expect(error.description.contains(message), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("a missing file is a clear error")
    func missingFile() {
        #expect(throws: ScenarioError.self) { try ScenarioFile.load(path: "/nonexistent/scenario.yaml") }
    }
}
