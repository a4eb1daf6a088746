import BrokerContract
import PubSubCore
import Testing

/// The engine contract (Tests/BrokerContract) for the memory engine, and for the same engine
/// behind ``DeferredBroker``, whose every answer comes later as a networked engine's does.
@Suite("Broker contract")
struct BrokerContractTests {
    @Test(arguments: BrokerContract.checks)
    func memory(_ check: BrokerContract.Check) async throws {
        try await check.run { MemoryBroker(configuration: $0) }
    }

    @Test(arguments: BrokerContract.checks)
    func deferred(_ check: BrokerContract.Check) async throws {
        try await check.run { DeferredBroker(MemoryBroker(configuration: $0)) }
    }
}
