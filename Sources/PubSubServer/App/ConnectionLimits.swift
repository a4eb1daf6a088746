import NIOCore
import PubSubCore
import Synchronization

/// `--max-connections` and `--max-connections-per-ip` (SPEC 7): WebSocket connections and SSE
/// streams at once, in all and per client address. An upgrade reserves a place before it is
/// answered and gives it back when its channel closes, whatever happened in between; a stream
/// holds one while it runs (its connection may carry other requests after it).
///
///     if let refusal = limits.reserve(for: channel) { refuse(refusal) }   // 503
final class ConnectionLimits: Sendable {
    private let maxTotal: Int
    private let maxPerAddress: Int
    private struct Counts {
        var total = 0
        var perAddress: [String: Int] = [:]
    }
    private let counts = Mutex(Counts())

    init(maxTotal: Int, maxPerAddress: Int) {
        self.maxTotal = maxTotal
        self.maxPerAddress = maxPerAddress
    }

    /// A place taken by ``hold(for:)``: given back once, by ``giveBack()`` or by its channel's
    /// close, whichever comes first.
    final class Place: Sendable {
        private let limits: ConnectionLimits
        private let address: String?
        private let held = Atomic(true)

        fileprivate init(limits: ConnectionLimits, address: String?) {
            self.limits = limits
            self.address = address
        }

        func giveBack() {
            if held.exchange(false, ordering: .acquiringAndReleasing) { limits.release(address) }
        }
    }

    /// Takes a place for `channel` until it closes, or says which limit is reached.
    func reserve(for channel: any Channel) -> PubSubError? {
        switch hold(for: channel) {
        case .success: nil
        case .failure(let refusal): refusal
        }
    }

    /// Takes a place until it is given back or `channel` closes; nil when no limit is set.
    func hold(for channel: any Channel) -> Result<Place?, PubSubError> {
        guard maxTotal > 0 || maxPerAddress > 0 else { return .success(nil) }
        let address = maxPerAddress > 0 ? Self.address(of: channel) : nil
        let refusal: PubSubError? = counts.withLock(of: self) { counts in
            if maxTotal > 0, counts.total >= maxTotal {
                return .limitExceeded("max_connections", maximum: maxTotal, "the server has reached its connection limit")
            }
            if let address {
                guard counts.perAddress[address, default: 0] < maxPerAddress else {
                    return .limitExceeded(
                        "max_connections_per_ip", maximum: maxPerAddress, "too many connections from this address"
                    )
                }
                counts.perAddress[address, default: 0] += 1
            }
            counts.total += 1
            return nil
        }
        if let refusal { return .failure(refusal) }
        let place = Place(limits: self, address: address)
        channel.closeFuture.whenComplete { _ in place.giveBack() }
        return .success(place)
    }

    fileprivate func release(_ address: String?) {
        counts.withLock(of: self) { counts in
            counts.total -= 1
            guard let address, let count = counts.perAddress[address] else { return }
            counts.perAddress[address] = count > 1 ? count - 1 : nil
        }
    }

    /// The client's IP address, without its port ("unknown" when the socket has none).
    static func address(of channel: any Channel) -> String {
        channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Connections and streams holding a place (for tests).
    var reserved: Int { counts.withLock(of: self) { $0.total } }
}
