import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a run's report files into `<root>/<run-id>/` and points `<root>/latest` at them.
///
/// The folder gets `report.json` (the data, see `reports/report.schema.json`), `report.md` (see
/// ``MarkdownReport``), `report.html` (see ``HTMLReport``) and, when the run has conformance
/// results, `junit.xml` (see ``JUnitReport``). Without conformance results no `junit.xml` is
/// written, so a CI step that publishes test results never shows an empty test run as a pass.
///
/// ```swift
/// let folder = try ReportWriter.write(report, into: URL(fileURLWithPath: "reports"))
/// print("Report: \(folder.path)/report.html")
/// ```
public enum ReportWriter {
    /// The JSON report's file name.
    public static let jsonFileName = "report.json"
    /// The Markdown summary's file name.
    public static let markdownFileName = "report.md"
    /// The HTML report's file name.
    public static let htmlFileName = "report.html"
    /// The JUnit XML file's name; written only when there are conformance results.
    public static let junitFileName = "junit.xml"
    /// The name of the symbolic link to the newest run folder.
    public static let latestLinkName = "latest"

    /// Writes every format of `report` and repoints `latest`.
    ///
    /// Each file is written atomically. `latest` is a relative symbolic link (`latest -> <run-id>`),
    /// replaced with one `rename`, so a reader never sees it missing or half-made. A run folder
    /// that already exists is overwritten file by file.
    ///
    /// - Parameters:
    ///   - report: The run's report.
    ///   - reportsRoot: The reports folder, created when missing.
    /// - Returns: The run folder, `<reportsRoot>/<run-id>`.
    /// - Throws: ``ReportError`` when the run id is not a plain folder name
    ///   (``ReportError/Code/invalidRunID``), when a file cannot be written, or when `latest` exists
    ///   and is not a symbolic link (``ReportError/Code/writeFailed``).
    @discardableResult
    public static func write(_ report: RunReport, into reportsRoot: URL) throws -> URL {
        try validate(runID: report.runID)
        let folder = reportsRoot.appendingPathComponent(report.runID, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw ReportError(.writeFailed, "cannot create the run folder: \(error.localizedDescription)", path: folder.path)
        }
        let json: Data
        do {
            json = try report.encoded()
        } catch {
            throw ReportError(.writeFailed, "cannot encode the report as JSON (a value is probably NaN or infinite): \(error)", path: folder.path)
        }
        try write(json, to: folder.appendingPathComponent(jsonFileName))
        try write(Data(MarkdownReport.render(report).utf8), to: folder.appendingPathComponent(markdownFileName))
        try write(Data(HTMLReport.render(report).utf8), to: folder.appendingPathComponent(htmlFileName))
        let junit = folder.appendingPathComponent(junitFileName)
        if report.conformance.isEmpty {
            // A stale junit.xml from an earlier write of the same run id would claim results this run has not.
            try? FileManager.default.removeItem(at: junit)
        } else {
            try write(Data(JUnitReport.render(report).utf8), to: junit)
        }
        try pointLatest(in: reportsRoot, at: report.runID)
        return folder
    }

    /// Checks that a run id is one plain path component: letters, digits, `.`, `_`, `-`.
    static func validate(runID: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !runID.isEmpty, runID != ".", runID != "..", runID != latestLinkName, runID.count <= 200,
              runID.allSatisfy({ allowed.contains($0) })
        else {
            throw ReportError(.invalidRunID, "run id \"\(runID)\" cannot be a folder name: use letters, digits, '.', '_' and '-' only")
        }
    }

    private static func write(_ data: Data, to url: URL) throws {
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw ReportError(.writeFailed, "cannot write: \(error.localizedDescription)", path: url.path)
        }
    }

    private static func pointLatest(in root: URL, at runID: String) throws {
        let latest = root.appendingPathComponent(latestLinkName)
        if let attributes = try? FileManager.default.attributesOfItem(atPath: latest.path),
           attributes[.type] as? FileAttributeType != .typeSymbolicLink {
            throw ReportError(.writeFailed, "exists and is not a symbolic link; remove it so it can point at the newest run", path: latest.path)
        }
        let temporary = root.appendingPathComponent(".\(latestLinkName).\(UUID().uuidString)")
        do {
            try FileManager.default.createSymbolicLink(atPath: temporary.path, withDestinationPath: runID)
        } catch {
            throw ReportError(.writeFailed, "cannot create a symbolic link: \(error.localizedDescription)", path: temporary.path)
        }
        guard rename(temporary.path, latest.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw ReportError(.writeFailed, "cannot replace the link: \(reason)", path: latest.path)
        }
    }
}
