import Foundation

/// An error reading, writing, comparing or merging reports.
///
/// ```swift
/// do {
///     _ = try RunReport.load(resultPath: "reports/latest")
/// } catch let error as ReportError where error.code == .unreadable {
///     print(error.message) // says which file and what is wrong with it
/// }
/// ```
public struct ReportError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case unreadable, invalidRunID, writeFailed, cannotMerge
        }

        private let base: Base

        /// A report file or folder is missing, is not JSON, or is not a report.
        public static let unreadable = Code(base: .unreadable)
        /// A run id cannot be used as a folder name.
        public static let invalidRunID = Code(base: .invalidRunID)
        /// A report file or the `latest` link could not be written.
        public static let writeFailed = Code(base: .writeFailed)
        /// Reports cannot be merged (none given, or incompatible formats).
        public static let cannotMerge = Code(base: .cannotMerge)

        /// The code's name.
        public var description: String { base.rawValue }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong and, where it helps, what to do.
    public var message: String
    /// The file or folder involved, when there is one.
    public var path: String?
    /// The source file that raised the error.
    public var file: String
    /// The source line that raised the error.
    public var line: Int

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: What went wrong.
    ///   - path: The file or folder involved.
    public init(_ code: Code, _ message: String, path: String? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.path = path
        self.file = file
        self.line = line
    }

    /// The message, prefixed with the path when there is one.
    public var description: String {
        if let path { "\(path): \(message)" } else { message }
    }
}
