import Foundation

extension RunReport {
    /// Reads a report from a `report.json` file or from a run folder that contains one.
    ///
    /// Errors name the file and say what is wrong: missing, not JSON, or which field is missing
    /// or has the wrong type.
    ///
    /// ```swift
    /// let latest = try RunReport.load(resultPath: "reports/latest")
    /// let baseline = try RunReport.load(resultPath: "baseline/report.json")
    /// ```
    ///
    /// - Parameter resultPath: A run folder (`reports/<run-id>`, `reports/latest`) or a JSON file.
    /// - Returns: The report.
    /// - Throws: ``ReportError`` with code ``ReportError/Code/unreadable``.
    public static func load(resultPath: String) throws -> RunReport {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resultPath, isDirectory: &isDirectory) else {
            throw ReportError(.unreadable, "no such file or folder", path: resultPath)
        }
        var url = URL(fileURLWithPath: resultPath)
        if isDirectory.boolValue {
            url = url.appendingPathComponent("report.json")
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw ReportError(.unreadable, "the folder has no report.json; pass a run folder such as reports/latest or a report.json file", path: resultPath)
            }
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ReportError(.unreadable, "cannot read the file: \(error.localizedDescription)", path: url.path)
        }
        do {
            return try decoder.decode(RunReport.self, from: data)
        } catch let error as DecodingError {
            throw ReportError(.unreadable, "not a valid Jadugar report (see reports/report.schema.json): \(describe(error))", path: url.path)
        } catch {
            throw ReportError(.unreadable, "not a valid Jadugar report: \(error)", path: url.path)
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            guard !codingPath.isEmpty else { return "the top level" }
            var text = ""
            for key in codingPath {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text
        }
        switch error {
        case let .keyNotFound(key, context):
            let parent = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
            return "the required field \"\(key.stringValue)\" is missing\(parent)"
        case let .typeMismatch(type, context):
            return "\(path(context.codingPath)) should be \(type): \(context.debugDescription)"
        case let .valueNotFound(type, context):
            return "\(path(context.codingPath)) is null but should be \(type)"
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                return "the file is not JSON (\(context.underlyingError.map { "\($0)" } ?? context.debugDescription))"
            }
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
