import Foundation
import JadugarHarness
import Testing

@Suite("Writing report folders")
struct ReportWriterTests {
    static func temporaryRoot() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("jadugar-reports-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        return root
    }

    @Test("writes every format into <root>/<run-id> and points latest at it")
    func writesFolder() throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let report = ReportFixture.report()
        let folder = try ReportWriter.write(report, into: root)
        #expect(folder.lastPathComponent == report.runID)
        for name in ["report.json", "report.md", "report.html", "junit.xml"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(name).path), "\(name)")
        }
        let link = try FileManager.default.destinationOfSymbolicLink(atPath: root.appendingPathComponent("latest").path)
        #expect(link == report.runID)
        #expect(try RunReport.load(resultPath: root.appendingPathComponent("latest").path) == report)
        #expect(try RunReport.load(from: folder.appendingPathComponent("report.json")) == report)
    }

    @Test("a second run repoints latest and leaves no temporary links behind")
    func repointsLatest() throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        try ReportWriter.write(ReportFixture.minimalReport(), into: root)
        var second = ReportFixture.minimalReport()
        second.runID = "minimal-2"
        try ReportWriter.write(second, into: root)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root.appendingPathComponent("latest").path) == "minimal-2")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path).sorted() == ["latest", "minimal-1", "minimal-2"])
    }

    @Test("no junit.xml without conformance results")
    func noJUnitWithoutConformance() throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let folder = try ReportWriter.write(ReportFixture.minimalReport(), into: root)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("junit.xml").path))
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("report.html").path))
    }

    @Test("run ids that are not plain folder names are refused", arguments: ["", "..", "a/b", "latest", "x y"])
    func badRunID(runID: String) throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        var report = ReportFixture.minimalReport()
        report.runID = runID
        let error = try #require(throws: ReportError.self) { try ReportWriter.write(report, into: root) }
        #expect(error.code == .invalidRunID)
    }

    @Test("a real folder named latest is not clobbered")
    func latestIsAFolder() throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("latest"), withIntermediateDirectories: false)
        let error = try #require(throws: ReportError.self) { try ReportWriter.write(ReportFixture.minimalReport(), into: root) }
        #expect(error.code == .writeFailed)
        #expect(error.description.contains("not a symbolic link"))
    }

    @Test("unreadable inputs give errors that say what is wrong")
    func unreadable() throws {
        let root = try Self.temporaryRoot()
        defer { try? FileManager.default.removeItem(at: root) }
        let missing = try #require(throws: ReportError.self) { try RunReport.load(resultPath: root.appendingPathComponent("nope.json").path) }
        #expect(missing.code == .unreadable && missing.message.contains("no such file"))

        let emptyFolder = try #require(throws: ReportError.self) { try RunReport.load(resultPath: root.path) }
        #expect(emptyFolder.message.contains("no report.json"))

        let garbage = root.appendingPathComponent("garbage.json")
        try Data("not json".utf8).write(to: garbage)
        let notJSON = try #require(throws: ReportError.self) { try RunReport.load(resultPath: garbage.path) }
        #expect(notJSON.message.contains("not JSON"))

        var json = try #require(JSONSerialization.jsonObject(with: ReportFixture.minimalReport().encoded()) as? [String: Any])
        var workloads = try #require(json["workloads"] as? [[String: Any]])
        workloads[0]["summary"] = ["published": 1]
        json["workloads"] = workloads
        let partial = root.appendingPathComponent("partial.json")
        try JSONSerialization.data(withJSONObject: json).write(to: partial)
        let missingField = try #require(throws: ReportError.self) { try RunReport.load(resultPath: partial.path) }
        #expect(missingField.message.contains("workloads[0].summary"), "\(missingField)")
    }
}
