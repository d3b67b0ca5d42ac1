// swift-tools-version: 6.1
import PackageDescription

// Benchmarks for the publisher core, run with ordo-one's package-benchmark:
//
//     swift package --package-path Benchmarks benchmark
//
// Kept in a nested package so the library's own build never pulls in the benchmark tooling.
let package = Package(
    name: "JadugarBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // A plain path would take the checkout folder's name as the package identity.
        .package(name: "Jadugar", path: "../"),
        // Without the trait list, resolution tries to fetch the runtime interposer, which is not
        // available here; MallocInterposer alone gives the malloc counters we gate on.
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "PublisherBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "JadugarPublisher", package: "Jadugar"),
                .product(name: "Jadugar", package: "Jadugar"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            path: "Benchmarks/PublisherBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        )
    ]
)
