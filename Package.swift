// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // Release builds skip the run-time exclusivity checks (swift_beginAccess on every access
    // to a class's stored `var`s), a measurable share of the CPU per publish (docs/design.md,
    // "Build and process settings"). Debug builds, which
    // the tests run, keep them, so an overlapping access still fails a test.
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "pubsub",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pubsub", targets: ["pubsub"]),
        .library(name: "PubSubCore", targets: ["PubSubCore"]),
        .library(name: "PubSubProtocol", targets: ["PubSubProtocol"]),
        .library(name: "PubSubServer", targets: ["PubSubServer"]),
        .library(name: "RedisClient", targets: ["RedisClient"]),
        .library(name: "PubSubRedis", targets: ["PubSubRedis"]),
        .library(name: "PubSubAuth", targets: ["PubSubAuth"]),
        .library(name: "PubSubClient", targets: ["PubSubClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket", from: "1.6.2"),
    ],
    targets: [
        // The broker: topics, subscriptions, history, fan-out, bounded queues. No HTTP, no sockets.
        .target(
            name: "PubSubCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // A small Redis client on SwiftNIO: RESP2, pipelining, pub/sub, scripts (SPEC 6).
        .target(
            name: "RedisClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The engine of a cluster of nodes, on Redis (SPEC 6).
        .target(
            name: "PubSubRedis",
            dependencies: [
                "PubSubCore", "RedisClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Credentials to rights: API keys and client JWTs (SPEC 7). No HTTP, so the fuzz package
        // reaches the token decoder without the server.
        .target(
            name: "PubSubAuth",
            dependencies: [
                "PubSubCore",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Wire formats: frames <-> commands and events. Pure.
        .target(
            name: "PubSubProtocol",
            dependencies: [
                "PubSubCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Hummingbird app: REST routes, WebSocket sessions, configuration, lifecycle.
        .target(
            name: "PubSubServer",
            dependencies: [
                "PubSubCore",
                "PubSubProtocol",
                "PubSubRedis",
                "RedisClient",
                "PubSubAuth",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // In the binary, so a node serves its own files with nothing beside it on disk
            // (PackageResources): the hand-written OpenAPI document (GET /api/openapi.json; the
            // tuned routes stay as they are) and the dashboard's files.
            resources: [
                .embedInCode("REST/openapi.json"),
                .embedInCode("Dashboard/index.html"),
                .embedInCode("Dashboard/dashboard.css"),
                .embedInCode("Dashboard/dashboard.js"),
                .embedInCode("Dashboard/pubsub.js"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Swift client of the native protocol (SPEC 10): reconnects, resubscribes from the
        // last seq it delivered, declares gaps. Nothing of the server: an app links only this.
        .target(
            name: "PubSubClient",
            dependencies: [
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "pubsub",
            dependencies: [
                "PubSubServer",
                "PubSubClient",
                "PubSubAuth",
                "PubSubCore",
                "PubSubProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // What every engine guarantees, written against `any Broker`: each engine's tests run it.
        // Also an engine that answers everything later, for the Hub's and the sessions' waits.
        .target(
            name: "BrokerContract",
            dependencies: [
                "PubSubCore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/BrokerContract",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PubSubCoreTests",
            dependencies: [
                "PubSubCore", "BrokerContract", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // A real redis-server on a free port, for the tests that need one.
        .target(
            name: "RedisTestSupport",
            dependencies: [
                "RedisClient", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/RedisTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PubSubRedisTests",
            dependencies: [
                "PubSubRedis", "PubSubCore", "RedisClient", "RedisTestSupport", "BrokerContract",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RedisClientTests",
            dependencies: [
                "RedisClient", "RedisTestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PubSubClientTests",
            dependencies: ["PubSubClient"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PubSubProtocolTests",
            dependencies: ["PubSubProtocol", "PubSubCore", "BrokerContract"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PubSubServerTests",
            dependencies: [
                "PubSubServer",
                "PubSubAuth",
                "PubSubCore",
                "PubSubProtocol",
                "pubsub",
                "PubSubClient",
                "BrokerContract",
                "RedisTestSupport",
                "PubSubRedis",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
