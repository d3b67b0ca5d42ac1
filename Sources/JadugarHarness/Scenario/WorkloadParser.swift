import Yams

/// Turns a workload mapping (with `defaults` and `matrix`) into workloads.
struct WorkloadParser {
    let reader: NodeReader

    static let fields = [
        "name", "topics", "partitions", "subscriptionsPerTopic", "consumersPerSubscription", "producersPerTopic",
        "messageSize", "payloadFile", "keys", "rate", "warmup", "duration", "messages", "exitWhen", "drainTimeout",
        "ack", "prefetch", "persistent", "confirms", "inFlight", "consumerDelay", "backlog", "faults", "matrix",
    ]

    func parse(_ node: Node, path: String, defaults: [String: Node]) throws -> [Workload] {
        var fields = defaults
        for (key, value) in try reader.mapping(node, path, allowed: Self.fields) { fields[key] = value }
        guard let nameNode = fields["name"] else {
            throw reader.error(node, "\(path).name", "every workload needs a name")
        }
        let name = try reader.string(nameNode, "\(path).name")
        guard let matrixNode = fields.removeValue(forKey: "matrix") else {
            return [try workload(name: name, fields: fields, path: path)]
        }
        let matrix = try reader.mapping(matrixNode, "\(path).matrix", allowed: Self.fields.filter { !["name", "matrix"].contains($0) })
        var axes: [(key: String, values: [Node])] = []
        for key in matrix.keys.sorted() {
            guard case .sequence(let values) = matrix[key]!, !values.isEmpty else {
                throw reader.error(matrix[key], "\(path).matrix.\(key)", "expected a non-empty list of values")
            }
            axes.append((key, Array(values)))
        }
        var combinations: [[(String, Node)]] = [[]]
        for axis in axes {
            combinations = combinations.flatMap { prefix in axis.values.map { prefix + [(axis.key, $0)] } }
        }
        if combinations.count > 256 {
            throw reader.error(matrixNode, "\(path).matrix", "expands to \(combinations.count) runs; at most 256 are allowed")
        }
        return try combinations.map { combination in
            var expanded = fields
            var labels: [String: String] = [:]
            for (key, value) in combination {
                expanded[key] = value
                labels[key] = value.string ?? "\(value.any)"
            }
            let label = combination.map { "\($0.0)=\(labels[$0.0]!)" }.joined(separator: ",")
            var workload = try workload(name: "\(name)[\(label)]", fields: expanded, path: path)
            workload.matrixValues = labels
            return workload
        }
    }

    private func workload(name: String, fields: [String: Node], path: String) throws -> Workload {
        var w = Workload(name: name)
        func field(_ key: String) -> (Node, String)? { fields[key].map { ($0, "\(path).\(key)") } }
        if let (n, f) = field("topics") { w.topics = try reader.int(n, f, minimum: 1) }
        if let (n, f) = field("partitions") { w.partitions = try reader.int(n, f, minimum: 1) }
        if let (n, f) = field("subscriptionsPerTopic") { w.subscriptionsPerTopic = try reader.int(n, f, minimum: 0) }
        if let (n, f) = field("consumersPerSubscription") { w.consumersPerSubscription = try reader.int(n, f, minimum: 1) }
        if let (n, f) = field("producersPerTopic") { w.producersPerTopic = try reader.int(n, f, minimum: 0) }
        if let (n, f) = field("messageSize") { w.messageSize = try messageSize(n, f) }
        if let (n, f) = field("payloadFile") { w.payloadFile = try reader.string(n, f) }
        if let (n, f) = field("keys") { w.keys = try keys(n, f) }
        if let (n, f) = field("rate") { w.rate = try rate(n, f) }
        if let (n, f) = field("warmup") { w.warmup = try reader.duration(n, f) }
        if let (n, f) = field("duration") { w.duration = try reader.duration(n, f) }
        if let (n, f) = field("messages") {
            w.messages = try reader.int(n, f, minimum: 1)
            if fields["duration"] == nil { w.duration = nil }
        }
        if let (n, f) = field("exitWhen") {
            let text = try reader.string(n, f)
            guard let value = Workload.ExitCondition(rawValue: text) else { throw reader.error(n, f, "expected 'drained' or 'idle', got '\(text)'") }
            w.exitWhen = value
        }
        if let (n, f) = field("drainTimeout") { w.drainTimeout = try reader.duration(n, f) }
        if let (n, f) = field("ack") { w.ack = try ack(n, f) }
        if let (n, f) = field("prefetch") { w.prefetch = try reader.int(n, f, minimum: 1) }
        if let (n, f) = field("persistent") { w.persistent = try reader.bool(n, f) }
        if let (n, f) = field("confirms") { w.confirms = try reader.bool(n, f) }
        if let (n, f) = field("inFlight") { w.inFlight = try reader.int(n, f, minimum: 1) }
        if let (n, f) = field("consumerDelay") { w.consumerDelay = try reader.duration(n, f) }
        if let (n, f) = field("backlog") {
            let b = try reader.mapping(n, f, allowed: ["messages", "drainRate"])
            guard let count = b["messages"] else { throw reader.error(n, "\(f).messages", "a backlog needs a number of messages") }
            let drain = try b["drainRate"].map { node -> Double? in
                if node.string == "max" { return nil }
                guard let value = node.float, value > 0 else { throw reader.error(node, "\(f).drainRate", "expected a positive number of messages per second or 'max'") }
                return value
            } ?? nil
            w.backlog = Workload.Backlog(messages: try reader.int(count, "\(f).messages", minimum: 1), drainRate: drain)
        }
        if let (n, f) = field("faults") { w.faults = try faults(n, f) }
        if w.duration == nil && w.messages == nil && w.backlog == nil {
            throw reader.error(fields["name"], path, "give a duration or a number of messages, or the run never ends")
        }
        if w.payloadFile != nil, case .distribution = w.messageSize {
            throw reader.error(fields["payloadFile"], "\(path).payloadFile", "a payload file fixes the size; remove the size distribution")
        }
        return w
    }

    private func faults(_ node: Node, _ field: String) throws -> [Workload.Fault] {
        guard case .sequence(let entries) = node else {
            throw reader.error(node, field, "expected a list of faults, each with a name, 'at' or 'afterMessages', and 'action: restart' or a 'command'")
        }
        return try entries.enumerated().map { index, entry in
            let path = "\(field)[\(index)]"
            let e = try reader.mapping(entry, path, allowed: ["name", "at", "afterMessages", "action", "command"])
            let name = try e["name"].map { try reader.string($0, "\(path).name") } ?? "fault\(index + 1)"
            let trigger: Workload.Fault.Trigger
            switch (e["at"], e["afterMessages"]) {
            case (let at?, nil): trigger = .after(try reader.duration(at, "\(path).at"))
            case (nil, let count?): trigger = .afterMessages(try reader.int(count, "\(path).afterMessages", minimum: 1))
            case (_?, _?): throw reader.error(entry, path, "give either 'at' or 'afterMessages', not both")
            case (nil, nil): throw reader.error(entry, path, "a fault needs 'at' (a duration) or 'afterMessages' (a count)")
            }
            switch (e["action"], e["command"]) {
            case (let action?, nil):
                let text = try reader.string(action, "\(path).action")
                guard text == "restart" else { throw reader.error(action, "\(path).action", "the only action is 'restart' (the broker's --restart command); use 'command' for anything else, got '\(text)'") }
                return Workload.Fault(name: name, trigger: trigger, action: .restart)
            case (nil, let command?):
                if case .scalar = command { return Workload.Fault(name: name, trigger: trigger, action: .command(["*": try reader.string(command, "\(path).command")])) }
                let perBroker = try reader.mapping(command, "\(path).command", allowed: ["*", "memory", "redis", "rabbitmq", "kafka"])
                var commands: [String: String] = [:]
                for (broker, value) in perBroker { commands[broker] = try reader.string(value, "\(path).command.\(broker)") }
                guard !commands.isEmpty else { throw reader.error(command, "\(path).command", "expected a command, or a mapping from broker name to command") }
                return Workload.Fault(name: name, trigger: trigger, action: .command(commands))
            case (_?, _?): throw reader.error(entry, path, "give either 'action: restart' or 'command', not both")
            case (nil, nil): throw reader.error(entry, path, "a fault needs 'action: restart' or a 'command'")
            }
        }
    }

    private func messageSize(_ node: Node, _ field: String) throws -> Workload.MessageSize {
        if case .scalar = node { return .fixed(try reader.size(node, field)) }
        guard case .sequence(let entries) = node else {
            throw reader.error(node, field, "expected a size, or a list of {size, weight} entries")
        }
        var result: [(size: Int, weight: Double)] = []
        for (index, entry) in entries.enumerated() {
            let e = try reader.mapping(entry, "\(field)[\(index)]", allowed: ["size", "weight"])
            guard let size = e["size"] else { throw reader.error(entry, "\(field)[\(index)].size", "missing") }
            let weight = try e["weight"].map { node -> Double in
                guard let value = node.float, value > 0 else { throw reader.error(node, "\(field)[\(index)].weight", "expected a positive number") }
                return value
            } ?? 1
            result.append((try reader.size(size, "\(field)[\(index)].size"), weight))
        }
        guard !result.isEmpty else { throw reader.error(node, field, "the size distribution is empty") }
        return .distribution(result)
    }

    private func keys(_ node: Node, _ field: String) throws -> Workload.KeyDistribution {
        let text = try reader.string(node, field)
        if text == "none" { return .none }
        let parts = text.split(separator: ":")
        if parts.count == 2, let n = Int(parts[1]), n > 0 {
            if parts[0] == "random" { return .random(n) }
            if parts[0] == "round-robin" { return .roundRobin(n) }
        }
        throw reader.error(node, field, "expected 'none', 'random:N' or 'round-robin:N', got '\(text)'")
    }

    private func rate(_ node: Node, _ field: String) throws -> Workload.Rate {
        if case .sequence(let values) = node {
            let rates = try values.enumerated().map { index, value -> Double in
                guard let rate = value.float, rate > 0 else { throw reader.error(value, "\(field)[\(index)]", "expected a positive number of messages per second") }
                return rate
            }
            guard !rates.isEmpty else { throw reader.error(node, field, "the rate list is empty") }
            return .sweep(rates)
        }
        let text = node.string ?? ""
        if text == "max" { return .max }
        if text == "unlimited" || text == "0" { return .unlimited }
        guard let rate = node.float, rate > 0 else {
            throw reader.error(node, field, "expected a number of messages per second, 'max', 'unlimited', or a list of numbers; got '\(text)'")
        }
        return .fixed(rate)
    }

    private func ack(_ node: Node, _ field: String) throws -> Workload.AckMode {
        let text = try reader.string(node, field)
        switch text {
        case "auto": return .auto
        case "manual": return .manual
        default:
            if text.hasPrefix("multi:"), let n = Int(text.dropFirst(6)), n >= 1 { return .multi(n) }
            throw reader.error(node, field, "expected 'auto', 'manual' or 'multi:N', got '\(text)'")
        }
    }
}
