import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import WSClient

/// A client of pubsub's native WebSocket protocol (SPEC 10, docs/clients.md).
///
/// It connects on first use, reconnects with exponential backoff and jitter when the connection
/// is lost, and then resubscribes each topic with `since` = the last seq it delivered and the
/// topic's epoch: a subscription's sequence holds every message once, in order, and a
/// ``SubscriptionElement/gap(_:)`` where the server could not bring them back.
///
/// ```swift
/// import PubSubClient
///
/// let client = try PubSubClient(url: "ws://127.0.0.1:4000/ws", token: ProcessInfo.processInfo.environment["PUBSUB_TOKEN"])
/// let orders = try await client.subscribe("orders", from: .lastN(10))
/// Task {
///     for try await element in orders {
///         switch element {
///         case .event(let event): print(event.seq, event.payload)
///         case .gap(let gap): print("lost:", gap)
///         }
///     }
/// }
/// let receipt = try await client.publish("orders", ["total": 12])
/// print("published as seq", receipt.seq)
/// await client.close()
/// ```
public actor PubSubClient {
    /// The WebSocket URL it connects to.
    public nonisolated let url: String
    private let token: String?
    private let configuration: PubSubClientConfiguration

    private var machine: ClientMachine
    /// Identifies the current connection: what an older one reports late is ignored.
    private var generation = 0
    private var outbox: AsyncStream<String>.Continuation?
    private var ticker: Task<Void, Never>?
    private var connectWaiters: [CheckedContinuation<Void, any Error>] = []
    private var subscribeWaiters: [Int: CheckedContinuation<Void, any Error>] = [:]
    private var outlets: [Int: SubscriptionOutlet] = [:]
    private var receiptWaiters: [Int: CheckedContinuation<PublishReceipt, any Error>] = [:]
    private var receipts: [Int: Result<PublishReceipt, PubSubClientError>] = [:]

    /// `url`: `ws://`, `wss://`, or the server's `http(s)://` base; a URL with no path gets
    /// `/ws`. `token` (an API key or JWT, with `--auth token`) goes in the upgrade request's
    /// `Authorization: Bearer` header.
    public init(url: String, token: String? = nil, configuration: PubSubClientConfiguration = .init()) throws {
        self.url = try Self.socketURL(url)
        self.token = token
        self.configuration = configuration
        self.machine = ClientMachine(
            backoff: Backoff(initial: configuration.initialReconnectDelay, maximum: configuration.maxReconnectDelay),
            requestTimeout: configuration.requestTimeout
        )
    }

    deinit {
        outbox?.finish()
        ticker?.cancel()
    }

    /// Connects now rather than on first use; returns once the server has greeted the client.
    /// Throws ``PubSubClientError/unreachable(_:)`` or ``PubSubClientError/upgradeRefused`` when
    /// the first connection cannot be made.
    public func connect() async throws {
        try await withCheckedThrowingContinuation { waiter in
            connectWaiters.append(waiter)
            perform(machine.connect())
        }
    }

    /// Subscribes to `topic` (or a pattern such as `orders.*`) and returns, once the server
    /// has acknowledged it, the sequence of its events. Throws the server's refusal
    /// (`TOPIC_NOT_FOUND`, `FORBIDDEN`, …). Subscribing again to the same topic ends the
    /// earlier sequence.
    public func subscribe(_ topic: String, from start: SubscriptionStart = .latest) async throws -> PubSubSubscription {
        let (stream, continuation) = AsyncThrowingStream<SubscriptionElement, any Error>.makeStream()
        let (id, actions) = machine.subscribe(topic, from: start, now: .now)
        let outlet = SubscriptionOutlet(
            continuation: continuation, topic: topic, maxEvents: configuration.maxPendingEvents, maxBytes: configuration.maxPendingBytes
        )
        outlets[id] = outlet
        continuation.onTermination = { [weak self] termination in
            // Finished by the client itself: nothing to undo.
            guard case .cancelled = termination, let self else { return }
            Task { await self.cancelSubscription(id) }
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { waiter in
                subscribeWaiters[id] = waiter
                perform(actions)
            }
        } onCancel: {
            Task { await self.cancelSubscription(id) }
        }
        return PubSubSubscription(topic: topic, stream: stream, pending: outlet.pending, client: self)
    }

    /// Publishes `message` (a `String`, a dictionary, any `Encodable`, or ``RawJSON`` sent as it
    /// is) and returns the server's receipt. A message that is an object with a string `id`
    /// and a `payload` gives the message its id. Throws the server's refusal, or
    /// ``PubSubClientError/disconnected`` when the connection dropped before the ack (the
    /// message may or may not have been published; it is not resent).
    @discardableResult
    public func publish(_ topic: String, _ message: some Encodable & Sendable) async throws -> PublishReceipt {
        try await startPublish(topic, message).receipt()
    }

    /// Publishes `message`; with `ack: false` fire-and-forget (no ack frame, and the returned
    /// receipt is nil; a refusal is not reported).
    @discardableResult
    public func publish(_ topic: String, _ message: some Encodable & Sendable, ack: Bool) async throws -> PublishReceipt? {
        guard !ack else { return try await publish(topic, message) }
        let raw = try Self.json(message)
        perform(machine.publish(topic, raw, ack: false, now: .now).actions)
        return nil
    }

    /// Sends a publish at once (or as soon as a connection is open) and returns without
    /// waiting for the ack: publishes started one after another go out in that order, for
    /// pipelining. ``PendingPublish/receipt()`` waits for the ack.
    public func startPublish(_ topic: String, _ message: some Encodable & Sendable) throws -> PendingPublish {
        let raw = try Self.json(message)
        let (ticket, actions) = machine.publish(topic, raw, ack: true, now: .now)
        perform(actions)
        return PendingPublish(ticket: ticket!, client: self)
    }

    /// Closes the connection for good: subscriptions end, waiting requests throw
    /// ``PubSubClientError/closed``.
    public func close() {
        perform(machine.close())
        ticker?.cancel()
        ticker = nil
    }

    // MARK: - Inside

    func receipt(_ ticket: Int) async throws -> PublishReceipt {
        if let result = receipts.removeValue(forKey: ticket) { return try result.get() }
        return try await withCheckedThrowingContinuation { receiptWaiters[ticket] = $0 }
    }

    private func cancelSubscription(_ id: Int) {
        perform(machine.cancel(id))
        subscribeWaiters.removeValue(forKey: id)?.resume(throwing: CancellationError())
        outlets.removeValue(forKey: id)?.finish()
    }

    private func perform(_ actions: [ClientMachine.Action]) {
        for action in actions {
            switch action {
            case .connect:
                openConnection()
            case .reconnect(let delay):
                Task { [weak self] in
                    try? await Task.sleep(for: delay)
                    await self?.reconnectDue()
                }
            case .resubscribe(let id, let delay):
                Task { [weak self] in
                    try? await Task.sleep(for: delay)
                    await self?.resubscribeDue(id)
                }
            case .send(let text):
                outbox?.yield(text)
            case .subscribed(let id):
                subscribeWaiters.removeValue(forKey: id)?.resume()
            case .deliver(let id, let element):
                outlets[id]?.deliver(element)
            case .finish(let id, let error):
                subscribeWaiters.removeValue(forKey: id)?.resume(throwing: error ?? .closed)
                outlets.removeValue(forKey: id)?.finish(throwing: error)
            case .published(let ticket, let result):
                if let waiter = receiptWaiters.removeValue(forKey: ticket) {
                    waiter.resume(with: result)
                } else {
                    receipts[ticket] = result
                }
            case .opened:
                for waiter in connectWaiters { waiter.resume() }
                connectWaiters = []
            case .connectFailed(let error):
                for waiter in connectWaiters { waiter.resume(throwing: error) }
                connectWaiters = []
            case .disconnect:
                outbox?.finish()
                outbox = nil
            }
        }
    }

    private func resubscribeDue(_ id: Int) {
        perform(machine.resubscribeDue(id, now: .now))
    }

    private func reconnectDue() {
        perform(machine.reconnectDue())
    }

    private func received(_ text: String, generation: Int) {
        guard generation == self.generation, let frame = ServerFrame(text: text) else { return }
        perform(machine.received(frame, now: .now))
    }

    private func connectionEnded(_ error: PubSubClientError, generation: Int) {
        guard generation == self.generation else { return }
        outbox?.finish()
        outbox = nil
        perform(machine.connectionLost(error, jitter: Double.random(in: 0..<1)))
    }

    private func tick() -> Bool {
        perform(machine.tick(now: .now))
        return machine.connection != .closed
    }

    private func openConnection() {
        generation += 1
        let generation = self.generation
        let (outgoing, outbox) = AsyncStream<String>.makeStream()
        self.outbox = outbox
        if ticker == nil {
            ticker = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(250))
                    guard let self, await self.tick() else { return }
                }
            }
        }
        var socket = WebSocketClientConfiguration(maxFrameSize: configuration.maxFrameSize)
        if let token { socket.additionalHeaders[.authorization] = "Bearer \(token)" }
        if let interval = configuration.pingInterval { socket.autoPing = .enabled(timePeriod: interval) }
        let url = self.url
        let tls = configuration.tls
        let logger = configuration.logger
        let maxSize = configuration.maxFrameSize
        Task { [weak self] in
            let error = await Self.run(url: url, socket: socket, tls: tls, logger: logger, maxSize: maxSize, outgoing: outgoing) { [weak self] text in
                await self?.received(text, generation: generation)
            }
            await self?.connectionEnded(error, generation: generation)
        }
    }

    /// One connection, to its end: writes what `outgoing` yields (and closes the connection
    /// when it finishes), hands every text frame to `receive`. Returns why it ended.
    private static func run(
        url: String, socket: WebSocketClientConfiguration, tls: TLSConfiguration?, logger: Logger, maxSize: Int,
        outgoing: AsyncStream<String>, receive: @escaping @Sendable (String) async -> Void
    ) async -> PubSubClientError {
        do {
            try await WebSocketClient.connect(url: url, configuration: socket, tlsConfiguration: tls, logger: logger) { inbound, outbound, _ in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await text in outgoing { try await outbound.write(.text(text)) }
                        try? await outbound.close(.normalClosure, reason: nil)
                    }
                    for try await message in inbound.messages(maxSize: maxSize) {
                        if case .text(let text) = message { await receive(text) }
                    }
                    group.cancelAll()
                }
            }
            return .disconnected
        } catch let error as WebSocketClientError where error == .webSocketUpgradeFailed {
            return .upgradeRefused
        } catch {
            return .unreachable(transportReason(error))
        }
    }

    /// A transport error in a few words: NIO's own descriptions name system calls and
    /// descriptors, which tell a user nothing. (The CLI's HTTP client says the same.)
    package static func transportReason(_ error: any Error) -> String {
        switch error {
        case let error as NIOSSLExtraError where error == .cannotUseIPAddressInSNI:
            return "wss:// needs the server's host name, not an IP address (TLS sends it as SNI)"
        case is NIOSSLError, is BoringSSLError:
            let description = String(describing: error)
            if description.contains("CERTIFICATE_VERIFY_FAILED") {
                return "TLS handshake failed: the server's certificate is not trusted"
            }
            // BoringSSL's reason without its error number and source path.
            if let start = description.range(of: "OPENSSL_internal:") {
                let rest = description[start.upperBound...]
                return "TLS handshake failed: \(rest.prefix { $0 != " " && $0 != "]" })"
            }
            return "TLS failed: \(description)"
        case let error as NIOConnectionError:
            if error.dnsAError != nil || error.dnsAAAAError != nil, error.connectionErrors.isEmpty {
                return "cannot resolve host '\(error.host)'"
            }
            if let first = error.connectionErrors.first { return transportReason(first.error) }
            return "cannot connect"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode)).lowercased()
        case let error as ChannelError:
            if case .connectTimeout = error { return "timed out connecting" }
            return String(describing: error)
        default:
            return String(describing: error)
        }
    }

    private static func json(_ message: some Encodable) throws -> RawJSON {
        if let raw = message as? RawJSON { return raw }
        do {
            return try RawJSON(encoding: message)
        } catch {
            throw PubSubClientError.invalidMessage("cannot encode the message as JSON: \(error)")
        }
    }

    /// `http(s)://` becomes `ws(s)://`; no path becomes `/ws`.
    static func socketURL(_ url: String) throws -> String {
        guard var components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else { throw PubSubClientError.invalidURL(url) }
        switch scheme {
        case "ws", "http": components.scheme = "ws"
        case "wss", "https": components.scheme = "wss"
        default: throw PubSubClientError.invalidURL(url)
        }
        if components.path.isEmpty || components.path == "/" { components.path = "/ws" }
        guard let result = components.string else { throw PubSubClientError.invalidURL(url) }
        return result
    }
}
