import PubSubCore

/// The refusals of a grant's checks, for the WebSocket commands and the REST routes.
extension PubSubError {
    static func forbidden(_ action: String, _ topic: String) -> PubSubError {
        PubSubError(.forbidden, "the token does not allow \(action) '\(topic)'", context: ["topic": topic])
    }

    static let adminOnly = PubSubError(.forbidden, "this needs an admin token or an API key")
}
