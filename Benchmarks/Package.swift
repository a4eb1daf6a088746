// swift-tools-version:6.1
// Micro-benchmarks of the hot path (ordo-one/benchmark), kept in their own package so that
// `swift test` at the root does not build them. Run: cd Benchmarks && swift package benchmark
import PackageDescription

/// What both targets measure: the broker and the wire formats.
let hotPath: [Target.Dependency] = [
    .product(name: "PubSubCore", package: "pubsub"),
    .product(name: "PubSubProtocol", package: "pubsub"),
    .product(name: "NIOCore", package: "swift-nio"),
]

let package = Package(
    name: "pubsub-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "pubsub", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "HotPath",
            dependencies: [.product(name: "Benchmark", package: "benchmark")] + hotPath,
            path: "Benchmarks/HotPath",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The publish path in a loop, for instruction counts (scripts/count-instructions.sh).
        .executableTarget(
            name: "PublishLoop",
            dependencies: hotPath,
            path: "Benchmarks/PublishLoop",
            // As the server's release build (../Package.swift).
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
    ]
)
