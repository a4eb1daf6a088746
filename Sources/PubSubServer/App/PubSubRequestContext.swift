import Hummingbird
import NIOCore

/// The context of a REST request: Hummingbird's core context plus the client's address, which
/// REST publishes are rate limited by (`--publish-rate`).
struct PubSubRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    /// The client's IP address, the key of its publish bucket.
    var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}
