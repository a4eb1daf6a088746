import Hummingbird
import NIOCore

/// The context of a REST request: Hummingbird's core context plus the client's address, which
/// REST publishes are rate limited by (`--publish-rate`).
struct PubSubRequestContext: RequestContext, RemoteAddressRequestContext {
    var coreContext: CoreRequestContextStorage
    let remoteAddress: SocketAddress?
    /// The request's connection: an SSE stream ends when it closes, and cuts it off when needed.
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }

    /// The client's IP address, the key of its publish bucket.
    var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}
