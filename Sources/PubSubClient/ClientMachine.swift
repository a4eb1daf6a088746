/// The client's whole state as a value: the connection, the subscriptions with the last seq
/// and epoch each delivered, the requests waiting for their reply, the backoff. The I/O layer
/// (``PubSubClient``) feeds it what happens and carries out the actions it returns, so every
/// rule here (resubscribe, dedupe, gaps, timeouts) is tested without a socket.
struct ClientMachine: Sendable {
    enum Connection: Sendable, Hashable {
        /// Not connected, and nothing asked for a connection (or the first attempt failed).
        case idle
        /// A connection is being made; open once the server's `connected` frame comes.
        case connecting
        case open
        /// Lost; a reconnect is scheduled.
        case waiting
        case closed
    }

    enum Action: Sendable, Hashable {
        /// Open a connection now.
        case connect
        /// Call ``ClientMachine/reconnectDue()`` after this delay.
        case reconnect(after: Duration)
        /// Call ``ClientMachine/resubscribeDue(_:now:)`` after this delay.
        case resubscribe(Int, after: Duration)
        /// Write this text frame on the open connection.
        case send(String)
        /// The subscription's first ack came: `subscribe` returns.
        case subscribed(Int)
        case deliver(Int, SubscriptionElement)
        /// The subscription ends: normally (nil) or with an error, which a `subscribe` still
        /// waiting for its first ack throws.
        case finish(Int, PubSubClientError?)
        case published(ticket: Int, Result<PublishReceipt, PubSubClientError>)
        /// The first connection is open (`connect()` returns).
        case opened
        /// The first connection could not be made (`connect()` throws).
        case connectFailed(PubSubClientError)
        /// Close the connection: the client was closed.
        case disconnect
    }

    private enum Waiting: Sendable, Hashable {
        case subscribe(Int)
        case publish(ticket: Int)
    }

    private struct Pending: Sendable, Hashable {
        var kind: Waiting
        var deadline: ContinuousClock.Instant
    }

    /// A publish asked for while no connection is open; sent once one is.
    private struct Queued: Sendable, Hashable {
        var topic: String
        var message: RawJSON
        var ticket: Int?
        var deadline: ContinuousClock.Instant
    }

    private(set) var connection = Connection.idle
    private(set) var subscriptions: [Int: Subscription] = [:]
    private var byTopic: [String: Int] = [:]
    private var patterns: Set<Int> = []
    private var pending: [String: Pending] = [:]
    private var queued: [Queued] = []
    private var everOpened = false
    private var attempt = 0
    private var nextID = 0
    let backoff: Backoff
    let requestTimeout: Duration

    init(backoff: Backoff, requestTimeout: Duration) {
        self.backoff = backoff
        self.requestTimeout = requestTimeout
    }

    var pendingRequests: Int { pending.count }

    private mutating func makeID() -> Int {
        nextID += 1
        return nextID
    }

    /// Starts connecting if nothing did yet.
    private mutating func demandConnection() -> [Action] {
        guard connection == .idle else { return [] }
        connection = .connecting
        return [.connect]
    }

    // MARK: - Calls of the application

    /// `connect()`: the first connection, or none to make when there is one.
    mutating func connect() -> [Action] {
        switch connection {
        case .open: [.opened]
        case .closed: [.connectFailed(.closed)]
        default: demandConnection()
        }
    }

    mutating func subscribe(_ topic: String, from start: SubscriptionStart, now: ContinuousClock.Instant) -> (id: Int, actions: [Action]) {
        let id = makeID()
        guard connection != .closed else { return (id, [.finish(id, .closed)]) }
        var actions: [Action] = []
        // One subscription per topic: a new one replaces the old (pubsub.js does the same).
        if let old = byTopic[topic] {
            actions += remove(old)
            actions.append(.finish(old, nil))
        }
        var subscription = Subscription(id: id, topic: topic, isPattern: Self.isPattern(topic), start: start)
        if case .since(let seq, let epoch) = start {
            subscription.lastSeq = seq
            subscription.epoch = epoch
        }
        subscriptions[id] = subscription
        byTopic[topic] = id
        if subscription.isPattern { patterns.insert(id) }
        if connection == .open {
            actions.append(sendSubscribe(id, now: now))
        } else {
            actions += demandConnection()
        }
        return (id, actions)
    }

    /// The application stopped consuming the subscription.
    mutating func cancel(_ id: Int) -> [Action] {
        remove(id)
    }

    /// Forgets a subscription, and unsubscribes on the connection when the server has it.
    private mutating func remove(_ id: Int) -> [Action] {
        guard let subscription = subscriptions.removeValue(forKey: id) else { return [] }
        if byTopic[subscription.topic] == id { byTopic[subscription.topic] = nil }
        patterns.remove(id)
        if let request = subscription.request { pending[request] = nil }
        guard connection == .open, subscription.active || subscription.request != nil else { return [] }
        return [.send(ClientFrame.unsubscribe(subscription.topic))]
    }

    /// A publish; with `ack` its ``Action/published(ticket:_:)`` comes later.
    mutating func publish(_ topic: String, _ message: RawJSON, ack: Bool, now: ContinuousClock.Instant) -> (ticket: Int?, actions: [Action]) {
        let ticket = ack ? makeID() : nil
        switch connection {
        case .closed:
            return (ticket, ticket.map { [.published(ticket: $0, .failure(.closed))] } ?? [])
        case .open:
            return (ticket, [sendPublish(topic, message, ticket: ticket, now: now)])
        default:
            queued.append(Queued(topic: topic, message: message, ticket: ticket, deadline: now + requestTimeout))
            return (ticket, demandConnection())
        }
    }

    mutating func close() -> [Action] {
        guard connection != .closed else { return [] }
        let wasConnecting = connection != .idle
        connection = .closed
        var actions = failRequests(.closed)
        for id in subscriptions.keys.sorted() {
            // A sequence in use ends normally; a subscribe still waiting for its ack throws.
            let error: PubSubClientError? = subscriptions[id]!.confirmed ? nil : .closed
            actions.append(.finish(id, error))
        }
        subscriptions = [:]
        byTopic = [:]
        patterns = []
        if wasConnecting { actions.append(.disconnect) }
        return actions
    }

    // MARK: - What the connection reports

    /// The server's `connected` frame: (re)subscribe everything, send what waited.
    private mutating func opened(now: ContinuousClock.Instant) -> [Action] {
        guard connection == .connecting else { return [] }
        connection = .open
        everOpened = true
        attempt = 0
        var actions: [Action] = [.opened]
        for id in subscriptions.keys.sorted() { actions.append(sendSubscribe(id, now: now)) }
        let waiting = queued
        queued = []
        for item in waiting { actions.append(sendPublish(item.topic, item.message, ticket: item.ticket, now: now)) }
        return actions
    }

    /// The connection ended, or could not be made. `jitter` in 0..<1 places the reconnect delay.
    mutating func connectionLost(_ error: PubSubClientError, jitter: Double) -> [Action] {
        guard connection == .connecting || connection == .open else { return [] }
        var actions: [Action] = []
        for (_, request) in pending.sorted(by: { $0.key < $1.key }) {
            if case .publish(let ticket) = request.kind { actions.append(.published(ticket: ticket, .failure(.disconnected))) }
        }
        pending = [:]
        for id in subscriptions.keys {
            subscriptions[id]!.active = false
            subscriptions[id]!.request = nil
        }
        guard everOpened else {
            // The first attempt failed: a wrong URL or token, no server. Say so rather than retry
            // for ever; a later call tries again.
            connection = .idle
            actions.append(.connectFailed(error))
            actions += failRequests(error)
            for id in subscriptions.keys.sorted() { actions.append(.finish(id, error)) }
            subscriptions = [:]
            byTopic = [:]
            patterns = []
            return actions
        }
        connection = .waiting
        actions.append(.reconnect(after: backoff.delay(attempt: attempt, jitter: jitter)))
        attempt += 1
        return actions
    }

    /// A resubscribe refused as `UNAVAILABLE` is due again (if the connection that refused
    /// it is still the one; a new connection resubscribes everything anyway).
    mutating func resubscribeDue(_ id: Int, now: ContinuousClock.Instant) -> [Action] {
        guard connection == .open, let subscription = subscriptions[id], !subscription.active, subscription.request == nil else { return [] }
        return [sendSubscribe(id, now: now)]
    }

    mutating func reconnectDue() -> [Action] {
        guard connection == .waiting else { return [] }
        connection = .connecting
        return [.connect]
    }

    mutating func received(_ frame: ServerFrame, now: ContinuousClock.Instant) -> [Action] {
        switch frame {
        case .connected:
            return opened(now: now)
        case .subscribed(let ack):
            guard let request = ack.requestID, let waiting = pending.removeValue(forKey: request),
                case .subscribe(let id) = waiting.kind, var subscription = subscriptions[id], subscription.request == request
            else { return [] }
            var actions: [Action] = []
            let recovering = subscription.confirmed
            subscription.request = nil
            subscription.active = true
            subscription.retries = 0
            if !subscription.confirmed {
                subscription.confirmed = true
                actions.append(.subscribed(id))
            }
            if let gap = subscription.acknowledge(ack, recovering: recovering) { actions.append(.deliver(id, .gap(gap))) }
            subscriptions[id] = subscription
            return actions
        case .published(let request?, let receipt):
            guard let waiting = pending.removeValue(forKey: request), case .publish(let ticket) = waiting.kind else { return [] }
            return [.published(ticket: ticket, .success(receipt))]
        case .error(let request?, let code, let message):
            guard let waiting = pending.removeValue(forKey: request) else { return [] }
            let error = PubSubClientError.server(code: code, message: message)
            switch waiting.kind {
            case .publish(let ticket):
                return [.published(ticket: ticket, .failure(error))]
            case .subscribe(let id):
                guard var subscription = subscriptions[id], subscription.request == request else { return [] }
                if code == "UNAVAILABLE", subscription.confirmed {
                    // The redis engine cannot reach Redis for now: a resubscribe is worth
                    // trying again, from the same seq, rather than ending the sequence.
                    subscription.request = nil
                    subscriptions[id] = subscription
                    let delay = backoff.delay(attempt: subscription.retries, jitter: 1)
                    subscriptions[id]!.retries += 1
                    return [.resubscribe(id, after: delay)]
                }
                // Refused (the topic is gone, the token lost the right): nothing more will come.
                _ = remove(id)
                return [.finish(id, error)]
            }
        case .event(let topic, let seq, let messageID, let payload, let timestamp):
            return route(topic: topic, seq: seq, id: messageID, payload: payload, timestamp: timestamp)
        case .topicDeleted(let topic):
            guard let id = byTopic[topic] else { return [] }
            subscriptions[id]!.active = false
            _ = remove(id)
            return [.finish(id, .topicDeleted(topic))]
        case .published(nil, _), .error(nil, _, _), .other:
            return []
        }
    }

    /// Fails what waited past its deadline.
    mutating func tick(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (request, waiting) in pending.sorted(by: { $0.key < $1.key }) where waiting.deadline <= now {
            pending[request] = nil
            switch waiting.kind {
            case .publish(let ticket):
                actions.append(.published(ticket: ticket, .failure(.timeout)))
            case .subscribe(let id):
                guard subscriptions[id]?.request == request else { continue }
                actions += remove(id)
                actions.append(.finish(id, .timeout))
            }
        }
        let expired = queued.filter { $0.deadline <= now }
        queued.removeAll { $0.deadline <= now }
        for item in expired {
            if let ticket = item.ticket { actions.append(.published(ticket: ticket, .failure(.timeout))) }
        }
        return actions
    }

    // MARK: - Rules

    private mutating func sendSubscribe(_ id: Int, now: ContinuousClock.Instant) -> Action {
        let request = "s\(makeID())"
        pending[request] = Pending(kind: .subscribe(id), deadline: now + requestTimeout)
        var subscription = subscriptions[id]!
        subscription.request = request
        subscriptions[id] = subscription
        // A pattern has no seq of its own to resume from (the server takes no `since` with one).
        if subscription.isPattern { return .send(ClientFrame.subscribe(subscription.topic, requestID: request)) }
        if let last = subscription.lastSeq {
            return .send(ClientFrame.subscribe(subscription.topic, requestID: request, since: last, epoch: subscription.epoch))
        }
        if case .lastN(let n) = subscription.start {
            return .send(ClientFrame.subscribe(subscription.topic, requestID: request, lastN: n))
        }
        return .send(ClientFrame.subscribe(subscription.topic, requestID: request))
    }

    private mutating func sendPublish(_ topic: String, _ message: RawJSON, ticket: Int?, now: ContinuousClock.Instant) -> Action {
        guard let ticket else { return .send(ClientFrame.publish(topic, message: message, requestID: nil)) }
        let request = "p\(ticket)"
        pending[request] = Pending(kind: .publish(ticket: ticket), deadline: now + requestTimeout)
        return .send(ClientFrame.publish(topic, message: message, requestID: request))
    }

    /// Fails every publish waiting for an ack or for a connection.
    private mutating func failRequests(_ error: PubSubClientError) -> [Action] {
        var actions: [Action] = []
        for (_, request) in pending.sorted(by: { $0.key < $1.key }) {
            if case .publish(let ticket) = request.kind { actions.append(.published(ticket: ticket, .failure(error))) }
        }
        pending = [:]
        for item in queued {
            if let ticket = item.ticket { actions.append(.published(ticket: ticket, .failure(error))) }
        }
        queued = []
        return actions
    }

    /// An event to the subscription of its topic, once, in order, a jump in seq declared as a
    /// gap; and to every pattern it matches.
    private mutating func route(topic: String, seq: Int, id messageID: String, payload: RawJSON, timestamp: String) -> [Action] {
        var actions: [Action] = []
        if let id = byTopic[topic], var subscription = subscriptions[id], subscription.active, !subscription.isPattern {
            let last = subscription.lastSeq ?? (seq - 1)
            // The server never repeats a seq; a replay that raced a reconnect could.
            if seq > last {
                if seq > last + 1 {
                    // Dropped on the way: the server's backpressure policy, or a cluster node
                    // that could no longer bring them (its messages_dropped notice).
                    actions.append(.deliver(id, .gap(PubSubGap(topic: topic, epoch: subscription.epoch, missing: (last + 1)...(seq - 1)))))
                }
                subscription.lastSeq = seq
                subscriptions[id] = subscription
                let event = PubSubEvent(topic: topic, seq: seq, epoch: subscription.epoch, id: messageID, payload: payload, timestamp: timestamp)
                actions.append(.deliver(id, .event(event)))
            }
        }
        for id in patterns.sorted() {
            guard let subscription = subscriptions[id], subscription.active, Self.matches(subscription.topic, topic) else { continue }
            let event = PubSubEvent(topic: topic, seq: seq, epoch: nil, id: messageID, payload: payload, timestamp: timestamp)
            actions.append(.deliver(id, .event(event)))
        }
        return actions
    }
}
