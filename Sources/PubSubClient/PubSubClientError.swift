/// Why a client call failed, or why a subscription ended.
///
/// ```swift
/// do {
///     try await client.publish("orders", ["total": 12])
/// } catch PubSubClientError.server(let code, let message) {
///     print("refused: \(code) \(message)")          // TOPIC_NOT_FOUND, FORBIDDEN, …
/// } catch PubSubClientError.disconnected {
///     print("the connection dropped before the ack: it may or may not be published")
/// }
/// ```
public enum PubSubClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The server refused the request: its error code (`TOPIC_NOT_FOUND`, `FORBIDDEN`, …) and message.
    case server(code: String, message: String)
    /// The first connection could not be made (no route, refused, TLS, timeout). Later lost
    /// connections are retried instead.
    case unreachable(String)
    /// The server answered the WebSocket upgrade with an error status: a missing or refused
    /// token (with `--auth token`), a wrong path, a connection limit.
    case upgradeRefused
    /// The connection dropped before the server answered; a publish may or may not have happened.
    case disconnected
    /// No answer within the configured request timeout.
    case timeout
    /// ``PubSubClient/close()`` was called.
    case closed
    /// The topic was deleted; its subscription ends.
    case topicDeleted(String)
    /// A URL the client cannot use.
    case invalidURL(String)
    /// A message that is not JSON, or a subscription start the server would refuse.
    case invalidMessage(String)

    public var description: String {
        switch self {
        case .server(let code, let message): "\(message) (\(code))"
        case .unreachable(let reason): "cannot connect: \(reason)"
        case .upgradeRefused: "the server refused the WebSocket connection (a missing or invalid token?)"
        case .disconnected: "the connection closed before the server answered"
        case .timeout: "no answer from the server in time"
        case .closed: "the client was closed"
        case .topicDeleted(let topic): "topic '\(topic)' was deleted"
        case .invalidURL(let url): "'\(url)' is not a ws://, wss://, http:// or https:// URL"
        case .invalidMessage(let reason): reason
        }
    }
}
