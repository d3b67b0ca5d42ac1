import ArgumentParser

@main
struct JadugarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jadugar",
        abstract: "Messaging conformance and benchmarks across RabbitMQ, Kafka, Redis and the embedded broker.",
        discussion: """
            Examples:
              jadugar conform --broker memory://
              jadugar conform --broker memory:// --short --only delivery
            """,
        subcommands: [ConformCommand.self]
    )
}
