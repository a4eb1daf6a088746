import HTTPTypes
import Hummingbird
import NIOCore
import PubSubAuth
import PubSubCore
import PubSubProtocol

/// The REST API under `/api` (SPEC 3). Thin: parse, call the engine, encode JSON.
struct RESTRoutes {
    let state: ServerState
    var broker: any Broker { state.broker }
    var hub: Hub { state.hub }

    /// The methods each path under /api serves; the others answer 405 with `Allow`.
    static let methods: [(RouterPath, [HTTPRequest.Method])] = [
        ("topics", [.get, .post]), ("topics/{name}", [.get, .delete]), ("topics/{name}/messages", [.get, .post]),
        ("topics/{name}/presence", [.get]),
        ("topics/{name}/events", [.get]),
        ("broadcast", [.post]), ("health", [.get]), ("ready", [.get]), ("stats", [.get]), ("openapi.json", [.get]),
    ]

    func register(on router: Router<PubSubRequestContext>) {
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: MethodNotAllowedMiddleware(prefix: "api", paths: Self.methods))
        let api = router.group("api")
        api.post("topics") { request, _ in
            try await authorize(request, .admin)
            return try await createTopic(request)
        }
        api.get("topics") { request, _ in
            try await authorize(request, .admin)
            return try await listTopics()
        }
        api.get("topics/{name}") { request, context in
            let name = try context.parameters.require("name")
            // A bad name is 400 before any right is checked, as publishing has it (schemathesis
            // found a 403 naming a topic that cannot exist).
            try TopicName.validate(name)
            try await authorize(request, .subscribe(name))
            return try await getTopic(name)
        }
        api.delete("topics/{name}") { request, context in
            try await authorize(request, .admin)
            return try await deleteTopic(context.parameters.require("name"))
        }
        api.post("topics/{name}/messages") { request, context in
            try await publish(request, context: context, topic: context.parameters.require("name"), broadcast: false)
        }
        api.get("topics/{name}/messages") { request, context in
            let name = try context.parameters.require("name")
            try TopicName.validate(name)
            try await authorize(request, .subscribe(name))
            return try await history(request, topic: name)
        }
        api.get("topics/{name}/presence") { request, context in
            let name = try context.parameters.require("name")
            try TopicName.validate(name)
            try await authorize(request, .subscribe(name))
            return try await presence(name)
        }
        api.post("broadcast") { request, context in try await publish(request, context: context, topic: nil, broadcast: true) }
        api.get("health") { _, _ in try await health() }
        api.get("ready") { _, _ in ready() }
        api.get("stats") { request, _ in
            try await authorize(request, .admin)
            return try await stats()
        }
        // Public even with --auth token: a client needs the document to learn how to authenticate.
        api.get("openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: Self.openAPIDocument))
        }
        router.get("ws") { _, _ in
            Response(
                status: .upgradeRequired, headers: [.contentType: "application/json", .upgrade: "websocket"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"error":"connect with a WebSocket client","code":"BAD_REQUEST"}"#))
            )
        }
    }

    /// Sources/PubSubServer/REST/openapi.json, built into the binary (Package.swift).
    static let openAPIDocument = ByteBuffer(bytes: PackageResources.openapi_json)

    // MARK: rights (SPEC 7)

    enum Right {
        case admin
        case subscribe(String)
        case publish(String)
    }

    /// With `--auth token`: 401 without a valid bearer (an API key or a JWT), 403 when it
    /// does not give `right`. Health and ready need none.
    private func authorize(_ request: Request, _ right: Right) async throws {
        try check(try await authenticate(request), right)
    }

    /// The request's grant (nil with `--auth none`); 401 without a valid bearer.
    private func authenticate(_ request: Request) async throws -> Grant? {
        guard let authenticator = state.authenticator else { return nil }
        guard let credential = Credentials.bearer(request.headers[.authorization]) else { throw Credentials.missing }
        return try await authenticator.grant(for: credential)
    }

    /// 403 when `grant` does not give `right`.
    private func check(_ grant: Grant?, _ right: Right) throws(PubSubError) {
        guard let grant else { return }
        switch right {
        case .admin:
            if !grant.admin { throw PubSubError.adminOnly }
        case .subscribe(let topic):
            if !grant.maySubscribe(topic) { throw PubSubError.forbidden("reading", topic) }
        case .publish(let topic):
            if !grant.mayPublish(topic) { throw PubSubError.forbidden("publishing to", topic) }
        }
    }

    // MARK: handlers

    private func json(_ status: HTTPResponse.Status = .ok, _ body: (inout JSONWriter) -> Void) -> Response {
        var json = JSONWriter(frame: false)
        json.object(body)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: json.finish()))
    }

    private func body(_ request: Request) async throws -> ByteBuffer {
        var request = request
        return try await request.collectBody(upTo: state.configuration.maxBodyBytes)
    }

    /// `latency_ms`: p50, p90, p99 and max of the topic's delivery latency to this node's
    /// subscribers over the last minute, from sampled deliveries (null when none was timed).
    private func latency(of name: String, into o: inout JSONWriter) {
        let summary = hub.latency(name)
        o.key("latency_ms")
        o.object { l in
            for (key, value) in [("p50", summary?.p50), ("p90", summary?.p90), ("p99", summary?.p99), ("max", summary?.max)] {
                l.key(escaping: key)
                if let value { l.thousandths(value) } else { l.null() }
            }
            l.member("samples", summary?.samples ?? 0)
        }
    }

    /// Subscribers of `name` on this node, and on the cluster's other nodes as last seen.
    private func subscriberCount(_ name: String, _ engine: EngineStatus) -> Int {
        hub.subscriberCount(name) + (engine.otherNodesSubscriberCounts?[name] ?? 0)
    }

    private func createTopic(_ request: Request) async throws -> Response {
        let name = try RESTBodies.topicName(try await body(request))
        let topic = try await broker.createTopic(name).get()
        return json(.created) { o in
            o.key("status"); o.plainString("created")
            o.key("topic"); o.plainString(topic.name)
            o.key("timestamp"); o.timestamp(millis: WallClock.nowMillis())
        }
    }

    private func listTopics() async throws -> Response {
        let topics = try await broker.topics().get()
        let engine = broker.status()
        return json { o in
            o.key("topics")
            o.array { a in
                for topic in topics {
                    a.object { t in
                        t.key("name"); t.plainString(topic.name)
                        t.member("subscriber_count", subscriberCount(topic.name, engine))
                        t.member("message_count", topic.messageCount)
                        t.key("created_at"); t.timestamp(millis: topic.createdAtMillis)
                    }
                }
            }
            o.member("count", topics.count)
            o.key("timestamp"); o.timestamp(millis: WallClock.nowMillis())
        }
    }

    private func getTopic(_ name: String) async throws -> Response {
        let topic = try await broker.topic(name).get()
        let engine = broker.status()
        return json { o in
            o.key("name"); o.plainString(topic.name)
            o.member("subscriber_count", subscriberCount(topic.name, engine))
            o.member("message_count", topic.messageCount)
            o.key("created_at"); o.timestamp(millis: topic.createdAtMillis)
            o.member("seq", topic.seq)
            o.key("epoch"); o.plainString(topic.epoch)
            latency(of: topic.name, into: &o)
        }
    }

    private func deleteTopic(_ name: String) async throws -> Response {
        let topic = try await broker.deleteTopic(name).get()
        return json { o in
            o.key("status"); o.plainString("deleted")
            o.key("topic"); o.plainString(topic.name)
            o.key("timestamp"); o.timestamp(millis: WallClock.nowMillis())
        }
    }

    private func publish(_ request: Request, context: PubSubRequestContext, topic pathTopic: String?, broadcast: Bool) async throws -> Response {
        let grant = try await authenticate(request)
        let input = try RESTBodies.publish(
            try await body(request), topicFromPath: pathTopic, maxMessageBytes: state.configuration.maxMessageBytes
        )
        try check(grant, .publish(input.topic))
        // A body that does not decode takes no token.
        try state.restPublishLimiter?.take(address: context.clientAddress)
        let receipt = try await broker.publish(topic: input.topic, message: input.message)
        return json { o in
            o.key("status"); o.plainString(broadcast ? "sent" : "published")
            o.key("topic"); o.plainString(receipt.topic)
            o.member("message_id", receipt.messageID)
            o.member("seq", receipt.seq)
            if let delivered = receipt.delivered { o.member("delivered", delivered) }
            if let dropped = receipt.dropped { o.member("dropped", dropped) }
            o.key("timestamp"); o.timestamp(millis: WallClock.nowMillis())
        }
    }

    private func history(_ request: Request, topic: String) async throws -> Response {
        let lastN = try RESTQuery.count("last_n", request.uri.queryParameters["last_n"])
        let messages = try await broker.history(topic: topic, .last(lastN)).get().publications
        return json { o in
            o.key("topic"); o.plainString(topic)
            o.key("messages")
            o.array { a in
                for message in messages {
                    a.object { m in
                        m.member("seq", message.seq)
                        m.member("id", message.id)
                        m.key("payload"); m.raw(message.payload)
                        m.key("ts"); m.timestamp(millis: message.timestampMillis)
                    }
                }
            }
        }
    }

    /// 200 when the engine can serve (the redis engine is connected), else 503; 503 too
    /// once a graceful shutdown has begun.
    private func ready() -> Response {
        let engine = broker.status()
        let shuttingDown = state.shuttingDown.load(ordering: .relaxed)
        let ready = engine.ready && !shuttingDown
        return json(ready ? .ok : .serviceUnavailable) { o in
            o.key("status"); o.plainString(ready ? "ready" : shuttingDown ? "shutting_down" : "unavailable")
            o.key("engine"); o.plainString(engine.engine)
            o.key("timestamp"); o.timestamp(millis: WallClock.nowMillis())
        }
    }

    /// Liveness: 200 while the process serves, whether or not its engine can (that is
    /// `/api/ready`); the topic count is left out when the engine cannot say it.
    private func health() async throws -> Response {
        let topics = try? await broker.topics().get()
        let subscribers = hub.subscriberCounts().values.reduce(0, +)
        let engine = broker.status()
        return json { o in
            o.key("status"); o.plainString("healthy")
            o.key("engine"); o.plainString(engine.engine)
            o.member("engine_ready", engine.ready)
            o.key("uptime_seconds"); o.int(Int(state.uptimeSeconds))
            o.key("timestamp"); o.timestamp(millis: WallClock.nowMillis())
            o.key("service"); o.plainString("pubsub")
            if let topics { o.member("topics", topics.count) }
            o.member("subscribers", subscribers)
            o.member("connections", state.connectionsCurrent.load(ordering: .relaxed))
        }
    }

    private func stats() async throws -> Response {
        let topics = try await broker.topics().get()
        let published = try await broker.publishedCount().get()
        let counters = hub.counters
        let subscribers = hub.subscriberCounts()
        let engine = broker.status()
        return json { o in
            o.key("node")
            o.object { n in
                n.key("id"); n.plainString(engine.nodeID)
                n.key("engine"); n.plainString(engine.engine)
            }
            if let nodes = engine.cluster {
                o.key("cluster")
                o.object { c in
                    c.key("nodes")
                    c.array { a in
                        for node in nodes {
                            a.object { n in
                                n.key("id"); n.plainString(node.id)
                                n.member("connections", node.connections)
                                n.member("subscriptions", node.subscriptions)
                                n.key("last_seen"); n.timestamp(millis: node.lastSeenMillis)
                            }
                        }
                    }
                }
            }
            o.key("system")
            o.object { s in
                s.key("uptime_seconds"); s.int(Int(state.uptimeSeconds))
                s.key("started_at"); s.timestamp(millis: state.startedAtMillis)
                s.key("timestamp"); s.timestamp(millis: WallClock.nowMillis())
                s.member("memory_rss_bytes", ServerState.residentMemoryBytes())
            }
            o.key("connections")
            o.object { c in
                c.member("current", state.connectionsCurrent.load(ordering: .relaxed))
                c.member("total_opened", state.connectionsOpened.load(ordering: .relaxed))
            }
            o.key("topics")
            o.object { t in
                t.member("total_count", topics.count)
                t.key("details")
                t.array { a in
                    for topic in topics {
                        a.object { d in
                            d.key("name"); d.plainString(topic.name)
                            d.member("subscriber_count", (subscribers[topic.name] ?? 0) + (engine.otherNodesSubscriberCounts?[topic.name] ?? 0))
                            d.member("message_count", topic.messageCount)
                            d.member("dropped", topic.dropped)
                            d.member("seq", topic.seq)
                            latency(of: topic.name, into: &d)
                        }
                    }
                }
            }
            o.key("subscriptions")
            o.object { s in
                s.member("total_count", subscribers.values.reduce(0, +))
                s.key("by_topic")
                s.object { b in
                    for topic in topics {
                        b.key(escaping: topic.name); b.int(subscribers[topic.name] ?? 0)
                    }
                }
            }
            o.key("messages")
            o.object { m in
                m.member("published", published)
                m.member("delivered", counters.deliveredCount)
                m.member("dropped", counters.droppedCount)
            }
        }
    }
}

/// Known paths answer 405 (not 404) to any other method, with `Allow` listing theirs. A table
/// of paths rather than a 405 route per method: schemathesis's unsupported_method check found
/// TRACE, then QUERY, answering 404, and a request may carry any method token.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    private let paths: [(components: [Substring], allow: String)]

    init(prefix: String, paths: [(RouterPath, [HTTPRequest.Method])]) {
        self.paths = paths.map { path, methods in
            ("\(prefix)\(path.description)".split(separator: "/"), methods.map(\.rawValue).joined(separator: ", "))
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let components = request.uri.path.split(separator: "/")
            guard let known = paths.first(where: { Self.matches($0.components, components) }) else { throw error }
            throw HTTPError(.methodNotAllowed, headers: [.allow: known.allow])
        }
    }

    /// The router's rule: a `{capture}` stands for any one component.
    private static func matches(_ pattern: [Substring], _ components: [Substring]) -> Bool {
        pattern.count == components.count
            && zip(pattern, components).allSatisfy { pattern, component in pattern.hasPrefix("{") || pattern == component }
    }
}
