import JadugarBrokers

/// Registers every broker adapter the CLI knows, and reports their client libraries.
enum Brokers {
    static func registerAll() {
        JadugarBrokers.registerAll()
    }

    static func clientLibraries() -> [String: String] {
        JadugarBrokers.clientLibraryVersions()
    }
}
