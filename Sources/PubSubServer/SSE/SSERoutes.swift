import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import PubSubAuth
import PubSubCore
import PubSubProtocol
import ServiceLifecycle

/// `GET /api/topics/{name}/events` (SPEC 9): a topic's events as Server-Sent Events, for
/// browsers' `EventSource` and `curl -N`. Everything that can fail is checked before the stream
/// starts, so it answers a JSON error with its status (400, 401, 403, 404, 503) instead.
struct SSERoutes {
    let state: ServerState

    static let lastEventID = HTTPField.Name("Last-Event-ID")!

    func register(on router: Router<PubSubRequestContext>) {
        router.get("api/topics/{name}/events") { request, context in
            try await events(request, context: context)
        }
    }

    private func events(_ request: Request, context: PubSubRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        try TopicName.validate(name)
        let replay = try Self.replay(request)
        let grant = try await authorize(request, topic: name)
        guard !state.shuttingDown.load(ordering: .relaxed) else { throw PubSubError(.unavailable, "the server is shutting down") }
        // A stream is a long-lived connection as a WebSocket one is: it counts toward the limits.
        let place = try state.connectionLimits.hold(for: context.channel).get()
        let stream = SSEStream(state: state, topic: name, user: grant?.user, place: place, channel: context.channel, logger: context.logger)
        // The hub queues what `ack` returns ahead of the replay: nothing here, as the stream
        // writes the ack itself, first. A refused subscribe lets go of the stream, which takes
        // its subscriber out of the hub (`SSEStream.deinit`).
        let receipt = try await state.hub.subscribe(stream.subscriber, topic: name, replay: replay) { _ in ByteBuffer() }.get()
        let ack = NativeCodec.frame(.subscribed(receipt))
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            try await withGracefulShutdownHandler {
                try await stream.run(&writer, ack: ack, grant: grant)
            } onGracefulShutdown: {
                stream.shutDown()
            }
        })
    }

    /// Where the stream starts: `Last-Event-ID` (an EventSource resuming: it keeps the URL it
    /// started with, so the header wins over the query) or `since`, with `epoch`, as a native
    /// `since`; else `last_n`; else live events only.
    static func replay(_ request: Request) throws(PubSubError) -> ReplayRequest {
        let query = request.uri.queryParameters
        let epoch = query["epoch"].map(String.init)
        if let epoch, epoch.isEmpty || epoch.count > 64 { throw .badRequest("epoch must be 1 to 64 characters") }
        if let header = request.headers[lastEventID] {
            return .since(try RESTQuery.sequence("Last-Event-ID", Substring(header))!, epoch: epoch)
        }
        let since = try RESTQuery.sequence("since", query["since"])
        let lastN = try RESTQuery.count("last_n", query["last_n"])
        switch (since, lastN) {
        case (.some, .some): throw .badRequest("use either 'last_n' or 'since', not both")
        case (.some(let since), nil): return .since(since, epoch: epoch)
        case (nil, .some(let n)):
            guard epoch == nil else { throw .badRequest("epoch goes with since (or Last-Event-ID)") }
            return .lastN(n)
        case (nil, nil):
            guard epoch == nil else { throw .badRequest("epoch goes with since (or Last-Event-ID)") }
            return ReplayRequest.none
        }
    }

    /// With `--auth token`: the credential from `Authorization: Bearer`, else the `token` query
    /// parameter (EventSource cannot set headers), with the right to subscribe to `topic`.
    /// The allowed origins apply as to a WebSocket upgrade.
    private func authorize(_ request: Request, topic: String) async throws -> Grant? {
        if let origin = request.headers[.origin],
            let refusal = Credentials.originRefusal(HTTPHeaders([("Origin", origin)]), allowed: state.configuration.allowedOrigins)
        {
            throw refusal
        }
        guard let authenticator = state.authenticator else { return nil }
        let token = Credentials.bearer(request.headers[.authorization]) ?? request.uri.queryParameters["token"].flatMap { $0.isEmpty ? nil : String($0) }
        guard let token else { throw Credentials.missing }
        let grant = try await authenticator.grant(for: token)
        if !grant.maySubscribe(topic) { throw PubSubError.forbidden("reading", topic) }
        return grant
    }
}
