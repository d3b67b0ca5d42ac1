import ArgumentParser

@main
struct JadugarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jadugar",
        abstract: "Messaging conformance and benchmarks across RabbitMQ, Kafka, Redis and the embedded broker.",
        discussion: """
            Examples:
              jadugar run                                   # Scenarios/default.yaml on the embedded broker
              jadugar run Scenarios/throughput.yaml --broker memory:// --broker redis://127.0.0.1:6379
              jadugar conform --broker memory://
              jadugar bench --broker redis://127.0.0.1:6379       # Jadugar beside redis-benchmark
              jadugar compare reports/baseline/report.json reports/latest/report.json --threshold 0.1
              jadugar report reports/latest --format html -o report.html
              jadugar brokers check redis://127.0.0.1:6379
            """,
        subcommands: [RunCommand.self, ConformCommand.self, BenchCommand.self, CompareCommand.self, ReportCommand.self, BrokersCommand.self]
    )
}
