import BrokerContract
import NIOConcurrencyHelpers
import PubSubCore
import PubSubRedis
import RedisTestSupport
import Testing

/// The engine contract (Tests/BrokerContract), run against the Redis engine on a real
/// `redis-server`: each check gets a server of its own.
@Suite("Broker contract, Redis engine")
struct RedisBrokerContractTests {
    @Test(arguments: BrokerContract.checks)
    func redis(_ check: BrokerContract.Check) async throws {
        let server = try await RedisServer()
        let made = NIOLockedValueBox<[RedisBroker]>([])
        do {
            try await check.run { configuration in
                let broker = try await makeRedisEngine(server.url, configuration: configuration)
                made.withLockedValue { $0.append(broker) }
                return broker
            }
        } catch {
            for broker in made.withLockedValue({ $0 }) { await broker.shutdown() }
            throw error
        }
        for broker in made.withLockedValue({ $0 }) { await broker.shutdown() }
    }
}
