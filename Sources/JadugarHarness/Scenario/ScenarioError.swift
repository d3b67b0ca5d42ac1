/// A scenario file that cannot be run, with the file, line and field at fault.
///
/// ```swift
/// // Scenarios/broken.yaml:7: workloads[0].rate: expected a number of messages per second, 'max', or a list of numbers; got 'fast'
/// ```
public struct ScenarioError: Error, Sendable, CustomStringConvertible {
    /// The file.
    public var file: String
    /// The 1-based line, when known.
    public var line: Int?
    /// The field path, for example `workloads[0].rate`.
    public var field: String
    /// What is wrong and what is expected.
    public var message: String

    /// Creates an error.
    public init(file: String, line: Int?, field: String, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return field.isEmpty ? "\(location): \(message)" : "\(location): \(field): \(message)"
    }
}
