import Foundation
import Yams

/// A scenario file: which brokers, which workloads, and whether to run the conformance suite.
///
/// ```yaml
/// name: throughput
/// brokers: [memory://]
/// workloads:
///   - name: throughput
///     producersPerTopic: 2
///     messageSize: 1024
///     rate: unlimited
///     duration: 10s
/// ```
///
/// ```swift
/// let scenario = try ScenarioFile.load(path: "Scenarios/throughput.yaml")
/// ```
public struct ScenarioFile: Sendable {
    /// The scenario's name.
    public var name: String
    /// What it measures, in a sentence.
    public var description: String
    /// Broker URLs; `--broker` on the command line replaces them.
    public var brokers: [String]
    /// The workloads, matrix already expanded.
    public var workloads: [Workload]
    /// The conformance suite settings, when the scenario runs it.
    public var conformance: ConformanceSettings?
    /// The file as read.
    public var source: ScenarioSource

    /// Conformance settings of a scenario.
    public struct ConformanceSettings: Sendable, Equatable {
        /// `full` or `short`.
        public var scale: String
        /// Scenario-name filters.
        public var only: [String]
    }

    /// Reads and parses a file.
    ///
    /// - Throws: ``ScenarioError`` naming the file, line and field.
    public static func load(path: String) throws -> ScenarioFile {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ScenarioError(file: path, line: nil, field: "", message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    /// Parses scenario text.
    public static func parse(_ text: String, file: String) throws -> ScenarioFile {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ScenarioError(file: file, line: nil, field: "", message: "the file is empty")
            }
            root = node
        } catch let error as ScenarioError {
            throw error
        } catch let error as YamlError {
            throw ScenarioError(file: file, line: Self.line(of: error), field: "", message: "not valid YAML: \(error)")
        }
        let reader = NodeReader(file: file)
        let top = try reader.mapping(root, "", allowed: ["name", "description", "brokers", "workloads", "conformance", "defaults"])
        let name = try top["name"].map { try reader.string($0, "name") } ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let description = try top["description"].map { try reader.string($0, "description") } ?? ""
        let brokers = try top["brokers"].map { try reader.strings($0, "brokers") } ?? ["memory://"]
        for (index, url) in brokers.enumerated() where !url.contains("://") {
            throw reader.error(top["brokers"], "brokers[\(index)]", "'\(url)' is not a broker URL; expected for example memory:// or redis://127.0.0.1:6379")
        }
        var conformance: ConformanceSettings?
        if let node = top["conformance"] {
            if let enabled = node.bool {
                conformance = enabled ? ConformanceSettings(scale: "full", only: []) : nil
            } else {
                let fields = try reader.mapping(node, "conformance", allowed: ["scale", "only"])
                let scale = try fields["scale"].map { try reader.string($0, "conformance.scale") } ?? "full"
                guard ["full", "short"].contains(scale) else {
                    throw reader.error(fields["scale"], "conformance.scale", "expected 'full' or 'short', got '\(scale)'")
                }
                conformance = ConformanceSettings(scale: scale, only: try fields["only"].map { try reader.strings($0, "conformance.only") } ?? [])
            }
        }
        var workloads: [Workload] = []
        let defaults = try top["defaults"].map { try reader.mapping($0, "defaults", allowed: WorkloadParser.fields) } ?? [:]
        if let list = top["workloads"] {
            guard case .sequence(let sequence) = list else {
                throw reader.error(list, "workloads", "expected a list of workloads")
            }
            for (index, node) in sequence.enumerated() {
                workloads += try WorkloadParser(reader: reader).parse(node, path: "workloads[\(index)]", defaults: defaults)
            }
        }
        if workloads.isEmpty && conformance == nil {
            throw reader.error(root, "workloads", "the scenario has no workloads and no conformance section: nothing to run")
        }
        let names = workloads.map(\.name)
        if let duplicate = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw reader.error(top["workloads"], "workloads", "two workloads are named '\(duplicate)'; names must be unique")
        }
        return ScenarioFile(name: name, description: description, brokers: brokers, workloads: workloads, conformance: conformance, source: ScenarioSource(path: file, content: text))
    }

    private static func line(of error: YamlError) -> Int? {
        let text = "\(error)"
        // Yams prints "<line>:<column>: error: ..." for scanner and parser errors.
        let digits = text.prefix { $0.isNumber }
        return Int(digits)
    }
}

/// Reads typed values out of YAML nodes with errors that say where.
struct NodeReader {
    let file: String

    func error(_ node: Node?, _ field: String, _ message: String) -> ScenarioError {
        ScenarioError(file: file, line: node?.mark.map { $0.line }, field: field, message: message)
    }

    /// A mapping's entries by key; unknown keys are an error naming the known ones.
    func mapping(_ node: Node, _ field: String, allowed: [String]) throws -> [String: Node] {
        guard case .mapping(let mapping) = node else {
            throw error(node, field, "expected a mapping of fields (key: value)")
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.string else { throw error(keyNode, field, "a key is not a string") }
            let path = field.isEmpty ? key : "\(field).\(key)"
            guard allowed.contains(key) else {
                let suggestion = allowed.min { distance($0, key) < distance($1, key) }.map { " (did you mean '\($0)'?)" } ?? ""
                throw error(keyNode, path, "unknown field\(suggestion); known fields: \(allowed.joined(separator: ", "))")
            }
            result[key] = value
        }
        return result
    }

    func string(_ node: Node, _ field: String) throws -> String {
        guard case .scalar(let scalar) = node else { throw error(node, field, "expected a text value") }
        return scalar.string
    }

    func strings(_ node: Node, _ field: String) throws -> [String] {
        if case .scalar = node { return [try string(node, field)] }
        guard case .sequence(let sequence) = node else { throw error(node, field, "expected a list") }
        return try sequence.enumerated().map { try string($1, "\(field)[\($0)]") }
    }

    func int(_ node: Node, _ field: String, minimum: Int = 0) throws -> Int {
        guard let text = node.string, let value = Self.parseCount(text) else {
            throw error(node, field, "expected a whole number, got '\(node.string ?? "a list or mapping")'")
        }
        guard value >= minimum else { throw error(node, field, "must be at least \(minimum), got \(value)") }
        return value
    }

    func bool(_ node: Node, _ field: String) throws -> Bool {
        guard let value = node.bool else { throw error(node, field, "expected true or false, got '\(node.string ?? "?")'") }
        return value
    }

    func duration(_ node: Node, _ field: String) throws -> Duration {
        guard let text = node.string, let value = Self.parseDuration(text) else {
            throw error(node, field, "expected a duration such as 500ms, 10s, 2m or a number of seconds, got '\(node.string ?? "?")'")
        }
        return value
    }

    func size(_ node: Node, _ field: String) throws -> Int {
        guard let text = node.string, let value = Self.parseSize(text) else {
            throw error(node, field, "expected a size in bytes such as 1024, 4KiB or 1MiB, got '\(node.string ?? "?")'")
        }
        guard value >= 0 else { throw error(node, field, "a size cannot be negative") }
        return value
    }

    static func parseCount(_ text: String) -> Int? {
        Int(text.replacingOccurrences(of: "_", with: ""))
    }

    static func parseDuration(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000_001), ("µs", 0.000_001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let number = Double(trimmed.dropLast(suffix.count)), number >= 0 else { return nil }
            return .seconds(number * scale)
        }
        guard let seconds = Double(trimmed), seconds >= 0 else { return nil }
        return .seconds(seconds)
    }

    static func parseSize(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int)] = [("KiB", 1024), ("MiB", 1 << 20), ("KB", 1000), ("MB", 1_000_000), ("B", 1)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            guard let number = Int(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)) else { return nil }
            return number * scale
        }
        return parseCount(trimmed)
    }

    private func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.lowercased()), b = Array(b.lowercased())
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
