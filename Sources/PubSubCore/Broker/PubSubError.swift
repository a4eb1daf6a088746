/// The error codes a client can see, on the wire and in REST bodies.
///
///     let error = PubSubError(.topicNotFound, "topic 'orders' does not exist")
///     error.code.rawValue // "TOPIC_NOT_FOUND"
public enum ErrorCode: String, Sendable, CaseIterable {
    case badRequest = "BAD_REQUEST"
    case topicNotFound = "TOPIC_NOT_FOUND"
    case topicExists = "TOPIC_EXISTS"
    case messageTooLarge = "MESSAGE_TOO_LARGE"
    case slowConsumer = "SLOW_CONSUMER"
    case unauthorized = "UNAUTHORIZED"
    case forbidden = "FORBIDDEN"
    case rateLimited = "RATE_LIMITED"
    /// A configured limit (SPEC 7) was reached: topics, subscriptions, connections.
    case limitExceeded = "LIMIT_EXCEEDED"
    /// The engine cannot serve now (its Redis is unreachable); retrying later may succeed.
    case unavailable = "UNAVAILABLE"
    case `internal` = "INTERNAL"
}

/// A typed failure of a broker operation or of decoding client input.
///
/// The server maps it to a WebSocket `error` frame or an HTTP status in one place
/// (`PubSubServer/ErrorMapping.swift`).
public struct PubSubError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: ErrorCode
    public let message: String
    /// Extra members for the REST error body and the wire error object (`topic`, `limit`, ...).
    public let context: [String: String]

    public init(_ code: ErrorCode, _ message: String, context: [String: String] = [:]) {
        self.code = code
        self.message = message
        self.context = context
    }

    public var description: String { "\(self.code.rawValue): \(self.message)" }

    public static func topicNotFound(_ name: String) -> PubSubError {
        PubSubError(.topicNotFound, "topic '\(name)' does not exist", context: ["topic": name])
    }

    public static func topicExists(_ name: String) -> PubSubError {
        PubSubError(.topicExists, "topic '\(name)' already exists", context: ["topic": name])
    }

    public static func badRequest(_ message: String) -> PubSubError {
        PubSubError(.badRequest, message)
    }

    /// `limit` names the setting (`max_topics`, …); `maximum` is its value.
    public static func limitExceeded(_ limit: String, maximum: Int, _ message: String) -> PubSubError {
        PubSubError(.limitExceeded, message, context: ["limit": limit, "maximum": String(maximum)])
    }

    /// `retryAfter`: seconds until a publish would be accepted.
    public static func rateLimited(retryAfter: Double) -> PubSubError {
        PubSubError(
            .rateLimited, "publish rate limit reached; retry later",
            context: ["retry_after": String(max(1, Int(retryAfter.rounded(.up))))]
        )
    }
}

extension PubSubError {
    /// The engine cannot be reached; `why` says what failed.
    public static func unavailable(_ why: String) -> PubSubError {
        PubSubError(.unavailable, "the engine is unavailable: \(why)")
    }
}
