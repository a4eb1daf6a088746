import NIOConcurrencyHelpers
import NIOCore

/// Keeps one connection up: connects, and whenever the connection closes (or a connect
/// fails), connects again after a backoff that starts at `minimumBackoff` and doubles up to
/// `maximumBackoff`, until stopped. A connection that came up resets the backoff.
///
///     let link = RedisReconnector(on: loop) { RedisConnection.connect(to: url, on: loop) }
///         closeFuture: { $0.closeFuture } close: { $0.close() }
///     link.onUp = { connection in … }
///     link.start()
///     link.current?.send(["PING"])
///
/// `onUp` and `onDown` run on `loop`, in order: up, down, up, …
public final class RedisReconnector<Connection: Sendable>: Sendable {
    public let loop: any EventLoop
    private let connect: @Sendable () -> EventLoopFuture<Connection>
    private let closeFuture: @Sendable (Connection) -> EventLoopFuture<Void>
    private let close: @Sendable (Connection) -> EventLoopFuture<Void>
    private let minimumBackoff: TimeAmount
    private let maximumBackoff: TimeAmount
    private let state = NIOLockedValueBox(State())
    private let callbacks = NIOLockedValueBox(Callbacks())

    private struct State {
        var current: Connection?
        var stopped = false
        var started = false
        var backoff: TimeAmount = .zero
        var retry: Scheduled<Void>?
    }

    private struct Callbacks {
        var onUp: (@Sendable (Connection) -> Void)?
        var onDown: (@Sendable () -> Void)?
        var onFailure: (@Sendable (any Error, _ retryIn: TimeAmount) -> Void)?
    }

    public init(
        on loop: any EventLoop, minimumBackoff: TimeAmount = .milliseconds(100), maximumBackoff: TimeAmount = .seconds(2),
        connect: @escaping @Sendable () -> EventLoopFuture<Connection>,
        closeFuture: @escaping @Sendable (Connection) -> EventLoopFuture<Void>,
        close: @escaping @Sendable (Connection) -> EventLoopFuture<Void>
    ) {
        self.loop = loop
        self.connect = connect
        self.closeFuture = closeFuture
        self.close = close
        self.minimumBackoff = minimumBackoff
        self.maximumBackoff = maximumBackoff
    }

    /// Called on `loop` with each new connection, before anyone else can use it.
    public var onUp: (@Sendable (Connection) -> Void)? {
        get { callbacks.withLockedValue { $0.onUp } }
        set { callbacks.withLockedValue { $0.onUp = newValue } }
    }

    /// Called on `loop` when the connection was lost (not when stopped).
    public var onDown: (@Sendable () -> Void)? {
        get { callbacks.withLockedValue { $0.onDown } }
        set { callbacks.withLockedValue { $0.onDown = newValue } }
    }

    /// Called on `loop` when a connection attempt failed, with when the next one is.
    public var onFailure: (@Sendable (any Error, _ retryIn: TimeAmount) -> Void)? {
        get { callbacks.withLockedValue { $0.onFailure } }
        set { callbacks.withLockedValue { $0.onFailure = newValue } }
    }

    /// The connection while it is up.
    public var current: Connection? { state.withLockedValue { $0.current } }

    public func start() {
        let first = state.withLockedValue { state -> Bool in
            defer { state.started = true }
            return !state.started && !state.stopped
        }
        if first { loop.execute { self.attempt() } }
    }

    /// Closes the connection and connects no more.
    public func stop() -> EventLoopFuture<Void> {
        let (connection, retry) = state.withLockedValue { state in
            state.stopped = true
            defer {
                state.current = nil
                state.retry = nil
            }
            return (state.current, state.retry)
        }
        retry?.cancel()
        guard let connection else { return loop.makeSucceededVoidFuture() }
        return close(connection).flatMapError { _ in self.loop.makeSucceededVoidFuture() }
    }

    private func attempt() {
        guard !state.withLockedValue({ $0.stopped }) else { return }
        connect().hop(to: loop).whenComplete { result in
            switch result {
            case .success(let connection):
                let keep = self.state.withLockedValue { state -> Bool in
                    guard !state.stopped else { return false }
                    state.backoff = .zero
                    return true
                }
                guard keep else {
                    _ = self.close(connection)
                    return
                }
                // Up for the callback first, then for everyone: it may need to set the
                // connection up (resubscribe) before others use it.
                self.onUp?(connection)
                self.state.withLockedValue { $0.current = connection }
                self.closeFuture(connection).hop(to: self.loop).whenComplete { _ in self.lost(connection) }
            case .failure(let error):
                if let delay = self.retryLater() { self.onFailure?(error, delay) }
            }
        }
    }

    private func lost(_ connection: Connection) {
        let wasCurrent = state.withLockedValue { state -> Bool in
            guard !state.stopped else { return false }
            state.current = nil
            return true
        }
        guard wasCurrent else { return }
        onDown?()
        retryLater()
    }

    /// Schedules the next attempt; returns its delay (nil when stopped).
    @discardableResult
    private func retryLater() -> TimeAmount? {
        state.withLockedValue { state in
            guard !state.stopped else { return nil }
            state.backoff = state.backoff == .zero ? minimumBackoff : min(maximumBackoff, state.backoff * 2)
            let delay = state.backoff
            state.retry = loop.scheduleTask(in: delay) { self.attempt() }
            return delay
        }
    }
}
