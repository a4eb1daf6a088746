import PubSubCore
import Synchronization

/// What woke an SSE stream's writer, gathered while it wrote or waited: each kind is kept once
/// however often it came (a writer blocked on a client that does not read gets no pile-up of
/// heartbeats or wakes, only the latest state of its queue when it drains next).
struct SSEWakeReasons: OptionSet, Sendable {
    let rawValue: UInt8
    /// The subscriber's queue went from empty to non-empty (or overflowed).
    static let queue = SSEWakeReasons(rawValue: 1 << 0)
    static let heartbeat = SSEWakeReasons(rawValue: 1 << 1)
    /// Drops held back by the once-a-second limit on drop notices are due.
    static let dropNotice = SSEWakeReasons(rawValue: 1 << 2)
    /// The server is shutting down: flush, tell the client, end the stream.
    static let shutdown = SSEWakeReasons(rawValue: 1 << 3)
    /// The stream's token expired (with `--auth token`).
    static let expired = SSEWakeReasons(rawValue: 1 << 4)
    /// The connection closed (or the task was cancelled): nothing more can be written.
    static let gone = SSEWakeReasons(rawValue: 1 << 5)
}

/// Wakes the one task writing an SSE stream from any thread: publishers' queue wakes, timers,
/// shutdown and the connection's close. A fire with nobody waiting is kept for the next wait.
final class SSESignal: Sendable {
    private struct State {
        var reasons: SSEWakeReasons = []
        var waiter: CheckedContinuation<SSEWakeReasons, Never>?
    }
    private let state = Mutex(State())

    func fire(_ reasons: SSEWakeReasons) {
        let woken = state.withLock(of: self) { state -> (CheckedContinuation<SSEWakeReasons, Never>, SSEWakeReasons)? in
            state.reasons.formUnion(reasons)
            guard let waiter = state.waiter else { return nil }
            state.waiter = nil
            defer { state.reasons = [] }
            return (waiter, state.reasons)
        }
        if let (waiter, reasons) = woken { waiter.resume(returning: reasons) }
    }

    /// Everything fired since the last call, waiting until something is.
    func next() async -> SSEWakeReasons {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock(of: self) { state -> SSEWakeReasons? in
                    guard state.reasons.isEmpty else {
                        defer { state.reasons = [] }
                        return state.reasons
                    }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            fire(.gone)
        }
    }
}
