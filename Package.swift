// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Jadugar",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Jadugar", targets: ["Jadugar"]),
        .library(name: "JadugarPublisher", targets: ["JadugarPublisher"]),
        .library(name: "JadugarConformance", targets: ["JadugarConformance"]),
        .library(name: "JadugarRedis", targets: ["JadugarRedis"]),
        .library(name: "JadugarRabbitMQ", targets: ["JadugarRabbitMQ"]),
        .library(name: "JadugarKafka", targets: ["JadugarKafka"]),
        .library(name: "JadugarBrokers", targets: ["JadugarBrokers"]),
        .library(name: "JadugarHarness", targets: ["JadugarHarness"]),
        .library(name: "JadugarSecurity", targets: ["JadugarSecurity"]),
        .executable(name: "jadugar", targets: ["jadugar"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.3.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .target(
            name: "Jadugar",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "JadugarPublisher",
            dependencies: [
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        .target(
            name: "JadugarConformance",
            dependencies: ["Jadugar"]
        ),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CRabbitMQ", providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(name: "CRdKafka", providers: [.apt(["librdkafka-dev"])]),
        .target(
            name: "JadugarRedis",
            dependencies: ["Jadugar", "JadugarPublisher", "CHiredis", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "JadugarRabbitMQ",
            dependencies: ["Jadugar", "JadugarPublisher", "CRabbitMQ", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "JadugarKafka",
            dependencies: ["Jadugar", "JadugarPublisher", "CRdKafka", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "JadugarBrokers",
            dependencies: ["Jadugar", "JadugarRedis", "JadugarRabbitMQ", "JadugarKafka", "CHiredis", "CRabbitMQ", "CRdKafka"]
        ),
        .target(
            name: "JadugarSecurity",
            dependencies: ["Jadugar", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "JadugarHarness",
            dependencies: [
                "Jadugar",
                "JadugarConformance",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .executableTarget(
            name: "jadugar",
            dependencies: [
                "Jadugar",
                "JadugarConformance",
                "JadugarHarness",
                "JadugarBrokers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "JadugarTests", dependencies: [
            "Jadugar",
            .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            .product(name: "Tracing", package: "swift-distributed-tracing"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .testTarget(name: "JadugarPublisherTests", dependencies: ["JadugarPublisher"]),
        .testTarget(name: "JadugarConformanceTests", dependencies: ["Jadugar", "JadugarConformance"]),
        .testTarget(name: "JadugarSecurityTests", dependencies: ["Jadugar", "JadugarSecurity", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "JadugarHarnessTests", dependencies: ["Jadugar", "JadugarHarness", "JadugarBrokers", "JadugarConformance"]),
        .testTarget(name: "JadugarRedisTests", dependencies: ["Jadugar", "JadugarRedis", "JadugarConformance"]),
        .testTarget(name: "JadugarRabbitMQTests", dependencies: ["Jadugar", "JadugarRabbitMQ", "JadugarConformance"]),
        .testTarget(name: "JadugarKafkaTests", dependencies: ["Jadugar", "JadugarKafka", "JadugarConformance"]),
    ]
)

for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
