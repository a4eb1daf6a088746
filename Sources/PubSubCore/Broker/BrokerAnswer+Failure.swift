extension BrokerAnswer {
    /// Runs `body` if this answer fails: now, or when the future does.
    func whenFailed(_ body: @escaping @Sendable () -> Void) {
        switch self {
        case .now(.success): break
        case .now(.failure): body()
        case .later(let future): future.whenFailure { _ in body() }
        }
    }
}
