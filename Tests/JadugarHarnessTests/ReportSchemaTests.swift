import Foundation
import JadugarHarness
import Testing

/// Validates encoded reports against `reports/report.schema.json` with Python's `jsonschema`
/// (there is no JSON Schema validator for Swift in the package mirror).
///
/// The interpreter is `$JADUGAR_PYTHON` when set, else `python3` on `PATH`. When it or its
/// `jsonschema` module is missing the tests fail and say what to install; they never skip.
@Suite("report.json schema")
struct ReportSchemaTests {
    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var schemaURL: URL {
        repositoryRoot.appendingPathComponent("reports/report.schema.json")
    }

    static let installHint = "install it with `python3 -m pip install 'jsonschema>=4.18'` (or Debian's `apt-get install -y python3-jsonschema`), or point JADUGAR_PYTHON at a Python that has it"

    /// Exit 0 valid, 1 invalid (errors on stdout), 3 jsonschema missing.
    static let validator = """
        import json, sys
        try:
            import jsonschema
        except ImportError:
            print("the Python module jsonschema is not installed", file=sys.stderr)
            sys.exit(3)
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        errors = sorted(validator.iter_errors(json.load(open(sys.argv[2]))), key=lambda e: list(e.absolute_path))
        for error in errors:
            print("/".join(str(p) for p in error.absolute_path) or "(root)", ":", error.message)
        sys.exit(1 if errors else 0)
        """

    struct Outcome {
        var valid: Bool
        var errors: String
    }

    /// Runs the validator on `json`; records an issue and returns `nil` when it cannot run.
    static func validate(_ json: Data, sourceLocation: SourceLocation = #_sourceLocation) throws -> Outcome? {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("jadugar-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let instance = folder.appendingPathComponent("report.json")
        try json.write(to: instance)

        let python = ProcessInfo.processInfo.environment["JADUGAR_PYTHON"] ?? "python3"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-c", validator, schemaURL.path, instance.path]
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        do {
            try process.run()
        } catch {
            Issue.record("cannot start /usr/bin/env \(python): \(error); \(installHint)", sourceLocation: sourceLocation)
            return nil
        }
        let out = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        switch process.terminationStatus {
        case 0:
            return Outcome(valid: true, errors: out)
        case 1:
            return Outcome(valid: false, errors: out)
        case 3:
            Issue.record("\(python) has no jsonschema module: \(installHint)", sourceLocation: sourceLocation)
        case 127:
            Issue.record("\(python) was not found: install Python 3, then jsonschema: \(installHint)", sourceLocation: sourceLocation)
        default:
            Issue.record("the schema validator failed (exit \(process.terminationStatus)): \(err)\(out)", sourceLocation: sourceLocation)
        }
        return nil
    }

    static func object(_ report: RunReport) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: report.encoded()) as? [String: Any])
    }

    @Test("the realistic fixture, every optional field set, validates")
    func fixtureValidates() throws {
        let outcome = try Self.validate(ReportFixture.report().encoded())
        #expect(outcome?.valid == true, "\(outcome?.errors ?? "")")
    }

    @Test("a minimal report, no optional field set, validates")
    func minimalValidates() throws {
        let outcome = try Self.validate(ReportFixture.minimalReport().encoded())
        #expect(outcome?.valid == true, "\(outcome?.errors ?? "")")
    }

    @Test("a merged report validates")
    func mergedValidates() throws {
        let merged = try ReportMerge.merge([ReportFixture.report(runID: "a"), ReportFixture.report(runID: "b")])
        let outcome = try Self.validate(merged.encoded())
        #expect(outcome?.valid == true, "\(outcome?.errors ?? "")")
    }

    @Test("a report missing a required field fails validation", arguments: ["runID", "environment", "workloads", "conformance"])
    func missingTopLevelField(field: String) throws {
        var json = try Self.object(ReportFixture.report())
        json[field] = nil
        let outcome = try Self.validate(JSONSerialization.data(withJSONObject: json))
        #expect(outcome?.valid == false)
        #expect(outcome?.errors.contains("'\(field)' is a required property") == true, "\(outcome?.errors ?? "")")
    }

    @Test("a workload missing its p99 histogram data or a counter fails validation")
    func missingNestedField() throws {
        var json = try Self.object(ReportFixture.minimalReport())
        var workloads = try #require(json["workloads"] as? [[String: Any]])
        var summary = try #require(workloads[0]["summary"] as? [String: Any])
        summary["lost"] = nil
        workloads[0]["summary"] = summary
        var latency = try #require(workloads[0]["endToEndLatency"] as? [String: Any])
        latency["histogram"] = nil
        workloads[0]["endToEndLatency"] = latency
        json["workloads"] = workloads
        let outcome = try Self.validate(JSONSerialization.data(withJSONObject: json))
        #expect(outcome?.valid == false)
        #expect(outcome?.errors.contains("'lost' is a required property") == true, "\(outcome?.errors ?? "")")
        #expect(outcome?.errors.contains("'histogram' is a required property") == true, "\(outcome?.errors ?? "")")
    }

    @Test("unknown fields, wrong types and unknown statuses fail validation")
    func strict() throws {
        var json = try Self.object(ReportFixture.report())
        json["surprise"] = true
        var environment = try #require(json["environment"] as? [String: Any])
        environment["cores"] = "two"
        json["environment"] = environment
        var suites = try #require(json["conformance"] as? [[String: Any]])
        var entries = try #require(suites[0]["scenarios"] as? [[String: Any]])
        entries[0]["status"] = "maybe"
        suites[0]["scenarios"] = entries
        json["conformance"] = suites
        let outcome = try Self.validate(JSONSerialization.data(withJSONObject: json))
        #expect(outcome?.valid == false)
        let errors = outcome?.errors ?? ""
        #expect(errors.contains("surprise"), "\(errors)")
        #expect(errors.contains("environment/cores"), "\(errors)")
        #expect(errors.contains("conformance/0/scenarios/0/status"), "\(errors)")
    }

    @Test("the schema names every field the encoder writes")
    func schemaCoversModel() throws {
        let schema = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: Self.schemaURL)) as? [String: Any])
        let definitions = try #require(schema["$defs"] as? [String: Any])
        func properties(_ definition: String) throws -> Set<String> {
            let object = try #require(definitions[definition] as? [String: Any])
            return Set(try #require(object["properties"] as? [String: Any]).keys)
        }
        let report = try Self.object(ReportFixture.report())
        #expect(Set(report.keys).isSubset(of: Set(try #require(schema["properties"] as? [String: Any]).keys)))
        let workload = try #require((report["workloads"] as? [[String: Any]])?.first { $0["rateSearch"] != nil })
        #expect(Set(workload.keys) == (try properties("WorkloadResult")))
        let summary = try #require(workload["summary"] as? [String: Any])
        #expect(Set(summary.keys).isSubset(of: try properties("WorkloadSummary")))
    }
}
