// swift-tools-version:6.1
// libFuzzer targets for the decoders that read network bytes. Build and run with
// `scripts/fuzz.sh` at the repository's root (it has the build command and flags).
import PackageDescription

let fuzzTargets = ["FuzzNativeCommand", "FuzzPhoenix", "FuzzWebSocketReader", "FuzzDeflate", "FuzzRESTBodies", "FuzzRESP", "FuzzJWT"]

let package = Package(
    name: "PubSubFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The server package itself (this folder's parent), whatever the clone's folder is called.
        .package(name: "pubsub", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        // Input slicing and the invariant check shared by the targets.
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "PubSubProtocol", package: "pubsub"),
                .product(name: "PubSubCore", package: "pubsub"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        )
    ]
        + fuzzTargets.map { name in
            // One executable per fuzz target: its main.swift defines LLVMFuzzerTestOneInput.
            .executableTarget(
                name: name,
                dependencies: [
                    "FuzzSupport",
                    .product(name: "PubSubProtocol", package: "pubsub"),
                    .product(name: "PubSubCore", package: "pubsub"),
                    .product(name: "RedisClient", package: "pubsub"),
                    .product(name: "NIOCore", package: "swift-nio"),
                    // A second inflater, the reference FuzzDeflate compares with.
                    .product(name: "CompressNIO", package: "compress-nio"),
                    // The token check, and HMAC to sign what FuzzJWT sends it.
                    .product(name: "PubSubAuth", package: "pubsub"),
                    .product(name: "Crypto", package: "swift-crypto"),
                ]
            )
        }
)
