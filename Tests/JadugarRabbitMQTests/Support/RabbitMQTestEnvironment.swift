import Foundation
import Jadugar
import JadugarRabbitMQ
import Testing

/// Where the tests find RabbitMQ, from the environment that `eval "$(scripts/brokers env)"` sets up.
enum RabbitMQTestEnvironment {
    /// The broker URL variable.
    static let urlVariable = "JADUGAR_AMQP_URL"
    /// `scripts/brokers`, for `rabbitmqctl` (forced disconnects, the TLS listener).
    static let scriptVariable = "JADUGAR_BROKER_SCRIPT"
    /// Set to `1` to skip every test that needs a broker (CI never does).
    static let skipVariable = "JADUGAR_SKIP_BROKER_TESTS"

    struct MissingEnvironment: Error, CustomStringConvertible {
        var description: String
    }

    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The broker URL; fails the test naming the variable when it is missing, unless broker tests are skipped.
    static func url() throws -> String {
        if let url = environment[urlVariable], !url.isEmpty { return url }
        if environment[skipVariable] == "1" {
            try Test.cancel("skipped: \(skipVariable)=1 and \(urlVariable) is not set")
        }
        throw MissingEnvironment(description: "\(urlVariable) is not set: run `scripts/brokers up && eval \"$(scripts/brokers env)\"` first (or set \(skipVariable)=1 to skip broker tests)")
    }

    /// `scripts/brokers`; fails naming the variable when missing, unless broker tests are skipped.
    static func brokerScript() throws -> String {
        if let script = environment[scriptVariable], !script.isEmpty { return script }
        if environment[skipVariable] == "1" {
            try Test.cancel("skipped: \(skipVariable)=1 and \(scriptVariable) is not set")
        }
        throw MissingEnvironment(description: "\(scriptVariable) is not set: run `eval \"$(scripts/brokers env)\"` first (it points at scripts/brokers, used for rabbitmqctl)")
    }

    /// A configuration for the test broker whose connections carry `name`, so a test can close
    /// exactly its own connections.
    static func configuration(name: String = uniqueName("client")) throws -> RabbitMQConfiguration {
        var configuration = try RabbitMQConfiguration(url: url())
        configuration.connectionName = name
        configuration.reconnect = RabbitMQReconnectPolicy(initialDelay: .milliseconds(50), maxDelay: .seconds(1))
        return configuration
    }

    /// A fresh, unconnected client.
    static func broker(name: String = uniqueName("client")) throws -> RabbitMQBroker {
        RabbitMQBroker(configuration: try configuration(name: name))
    }

    /// A connected client; disconnect it at the end of the test.
    static func connectedBroker(name: String = uniqueName("client")) async throws -> RabbitMQBroker {
        let broker = try broker(name: name)
        try await broker.connect()
        return broker
    }

    /// A name no other test or run uses: the ID's random, per-process half keeps names of one run
    /// apart from those a previous run left behind (its counter half starts over in every process).
    static func uniqueName(_ label: String) -> String {
        let id = Message.makeID()
        return "jadugar-test.\(label).\(id.prefix(8))\(id.suffix(8))"
    }

    // MARK: rabbitmqctl

    /// Runs `rabbitmqctl` against the test node through `scripts/brokers`.
    ///
    /// One at a time: each run boots an Erlang VM of its own, and several booting at once on a
    /// loaded 2-core machine starve the broker they talk to. When the CLI could not reach the node
    /// in time (exit 69, `EX_UNAVAILABLE`, or 75, `EX_TEMPFAIL`), it is run again, twice at most:
    /// those statuses mean the command never ran.
    static func rabbitmqctl(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> ProcessResult {
        let script = try brokerScript()
        return try await rabbitmqctlGate.withLock {
            var result = try await ProcessRunner.run(script, ["rabbitmqctl"] + arguments, timeout: timeout)
            for _ in 0..<2 where result.status == 69 || result.status == 75 {
                result = try await ProcessRunner.run(script, ["rabbitmqctl"] + arguments, timeout: timeout)
            }
            return result
        }
    }

    private static let rabbitmqctlGate = AsyncGate()

    /// Closes every connection whose name contains `namePrefix` (the broker sends `connection.close`
    /// 320 CONNECTION_FORCED), leaving other clients of the shared broker alone. Returns how many.
    @discardableResult
    static func closeConnections(named namePrefix: String) async throws -> Int {
        let erlang = """
        Prefix = <<"\(namePrefix)">>,
        Matches = [Pid || Pid <- rabbit_networking:connections(),
            try rabbit_networking:connection_info(Pid, [client_properties]) of
                [{client_properties, Props}] ->
                    case lists:keyfind(<<"connection_name">>, 1, Props) of
                        {_, longstr, Name} -> binary:match(Name, Prefix) =/= nomatch;
                        _ -> false
                    end;
                _ -> false
            catch _:_ -> false
            end],
        [rabbit_networking:close_connection(Pid, "jadugar test: forced disconnect") || Pid <- Matches],
        length(Matches).
        """
        let result = try await rabbitmqctl(["eval", erlang])
        guard result.status == 0, let count = Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw MissingEnvironment(description: "rabbitmqctl eval (close connections) failed with status \(result.status): \(result.output) \(result.errorOutput)")
        }
        return count
    }
}

/// Polls a condition until it holds or the deadline passes (no sleeping as synchronisation: the
/// condition decides).
func eventually(within limit: Duration = .seconds(20), every interval: Duration = .milliseconds(20), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}

/// The next delivery of a stream within a bound, or `nil`.
func next(_ stream: DeliveryStream, within limit: Duration = .seconds(10)) async throws -> Delivery? {
    try await withThrowingTaskGroup(of: Delivery?.self) { group in
        group.addTask { try await stream.next() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
}
