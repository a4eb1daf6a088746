import Foundation
import PubSubCore
import PubSubRedis
import RedisClient
import RedisTestSupport
import NIOPosix

/// Redis engines for tests: each on `url`, with a prefix of its own unless given one (so
/// tests sharing a server do not share topics), started with `load` as the node's figures, and
/// ready when returned.
/// `commandTimeout` is 10 s, not the server's 1 s: under a sanitizer, with a dozen engines and
/// Redis servers at once on two cores, a healthy Redis took longer than 1 s to answer.
func makeRedisEngine(
    _ url: String, prefix: String? = nil, configuration: BrokerConfiguration = BrokerConfiguration(), commandTimeout: Double = 10,
    nodeExpiry: Double = 1, load: @escaping @Sendable () -> NodeLoad = { NodeLoad(connections: 0, subscriberCounts: [:]) }
) async throws -> RedisBroker {
    var settings = RedisEngineConfiguration(
        url: try RedisURL(url), prefix: prefix ?? "test\(UInt32.random(in: 0...UInt32.max))", historySize: configuration.historySize,
        autoCreateTopics: configuration.autoCreateTopics, maxTopics: configuration.maxTopics
    )
    settings.commandTimeoutSeconds = commandTimeout
    settings.heartbeatSeconds = 0.2
    settings.nodeExpirySeconds = nodeExpiry
    let broker = RedisBroker(configuration: settings, group: MultiThreadedEventLoopGroup.singleton)
    broker.start(load: load)
    try await waitUntil("the engine is ready") { broker.status().ready }
    return broker
}

/// Polls `condition` every 10 ms for at most `seconds`; throws if it never holds. 30 s: under a
/// sanitizer, with the whole suite on two cores, an engine took more than 10 s to be ready.
func waitUntil(_ what: String, seconds: Double = 30, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while try await !condition() {
        guard Date() < deadline else { throw EngineTestError("\(what): not within \(seconds) s") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// Calls of each command in `INFO commandstats` (commands run by a script count too), all
/// from one answer.
func commandCalls(_ redis: RedisConnection) async throws -> [String: Int] {
    let info = try await redis.command(["INFO", "commandstats"]).get().string ?? ""
    var calls: [String: Int] = [:]
    for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
        // cmdstat_hset:calls=12,usec=…
        let parts = line.dropFirst("cmdstat_".count).split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let first = parts[1].split(separator: ",").first, first.hasPrefix("calls="),
            let count = Int(first.dropFirst("calls=".count))
        else { continue }
        calls[String(parts[0])] = count
    }
    return calls
}

struct EngineTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
