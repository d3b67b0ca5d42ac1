import Foundation
import Jadugar
import JadugarHarness
import Testing

@Suite("Fault injection in scenario files", .serialized, .timeLimit(.minutes(2)))
struct FaultScenarioTests {
    @Test("faults parse: a time or a message count, a restart or a command per broker")
    func parse() throws {
        let scenario = try ScenarioFile.parse("""
            workloads:
              - name: faulty
                duration: 2s
                faults:
                  - name: restart
                    at: 1s
                    action: restart
                  - afterMessages: 500
                    command:
                      redis: redis-cli CLIENT KILL TYPE normal
                      "*": "true"
            """, file: "faults.yaml")
        let faults = try #require(scenario.workloads.first?.faults)
        #expect(faults.count == 2)
        #expect(faults[0] == Workload.Fault(name: "restart", trigger: .after(.seconds(1)), action: .restart))
        #expect(faults[1].name == "fault2")
        #expect(faults[1].trigger == .afterMessages(500))
        #expect(faults[1].action == .command(["redis": "redis-cli CLIENT KILL TYPE normal", "*": "true"]))
    }

    @Test("a fault with a bad shape is an error that names the file, line and field", arguments: [
        ("at: 1s\n        afterMessages: 5\n        action: restart", "give either 'at' or 'afterMessages'"),
        ("action: restart", "needs 'at'"),
        ("at: 1s", "needs 'action: restart' or a 'command'"),
        ("at: 1s\n        action: reboot", "the only action is 'restart'"),
        ("at: 1s\n        command:\n          mongodb: x", "unknown field"),
    ])
    func badShapes(body: String, message: String) throws {
        let yaml = """
            workloads:
              - name: faulty
                duration: 2s
                faults:
                  - \(body)
            """
        do {
            _ = try ScenarioFile.parse(yaml, file: "bad.yaml")
            Issue.record("accepted a bad fault: \(body)")
        } catch let error as ScenarioError {
            #expect(error.description.contains("bad.yaml:"), "\(error)")
            #expect(error.description.contains("workloads[0].faults[0]"), "\(error)")
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test("a fault fires at its time, runs its command, and the client's recovery is timed; one without a command is skipped with a reason")
    func firesOnTheEmbeddedBroker() async throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("jadugar-fault-\(Message.makeID())").path
        defer { try? FileManager.default.removeItem(atPath: marker) }
        let scenario = try ScenarioFile.parse("""
            workloads:
              - name: faulty
                messageSize: 64
                rate: 500
                warmup: 0s
                duration: 2s
                inFlight: 4
                faults:
                  - name: touch
                    at: 500ms
                    command: touch \(marker)
                  - name: restart
                    afterMessages: 100
                    action: restart
                  - name: never
                    afterMessages: 100000000
                    command: "true"
            """, file: "faults.yaml")
        let report = try await ScenarioRunner(options: RunOptions(progress: ProgressPrinter(quiet: true))).run(scenario)
        let workload = try #require(report.workloads.first)
        let faults = try #require(workload.faults)
        #expect(faults.map(\.outcome) == ["ran", "skipped", "skipped"])
        #expect(FileManager.default.fileExists(atPath: marker), "the fault's command did not run")
        #expect(faults[0].atSeconds >= 0.5)
        #expect(faults[0].reconnectSeconds != nil, "publishing went on after the fault, so a confirm followed it")
        #expect(faults[1].detail?.contains("--restart memory=") == true, "\(faults[1])")
        #expect(faults[2].detail?.contains("stopped publishing") == true, "\(faults[2])")
        #expect(workload.summary.lost == 0)
        #expect(MarkdownReport.render(report).contains("**Faults**"))
        // The fault results are part of the published report format.
        let decoded = try RunReport.decoder.decode(RunReport.self, from: try report.encoded())
        #expect(decoded.workloads.first?.faults == faults)
        let outcome = try ReportSchemaTests.validate(try report.encoded())
        #expect(outcome?.valid == true, "\(outcome?.errors ?? "")")
    }
}
