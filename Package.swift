// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Jadugar",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Jadugar", targets: ["Jadugar"]),
        .library(name: "JadugarPublisher", targets: ["JadugarPublisher"]),
        .library(name: "JadugarConformance", targets: ["JadugarConformance"]),
        .executable(name: "jadugar", targets: ["jadugar"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .target(
            name: "Jadugar",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
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
        .executableTarget(
            name: "jadugar",
            dependencies: [
                "Jadugar",
                "JadugarConformance",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "JadugarTests", dependencies: ["Jadugar"]),
        .testTarget(name: "JadugarPublisherTests", dependencies: ["JadugarPublisher"]),
        .testTarget(name: "JadugarConformanceTests", dependencies: ["Jadugar", "JadugarConformance"]),
    ]
)

for target in package.targets {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}
