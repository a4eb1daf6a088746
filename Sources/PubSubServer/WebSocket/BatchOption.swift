import PubSubCore

/// The `batch` query parameter of a native upgrade (`/ws?batch=1`, docs/protocol.md): `1`
/// asks for batched frames, `0` (or no parameter) for one message per frame. Anything else is
/// refused with 400 at the upgrade rather than guessed at.
enum BatchOption {
    /// Why an upgrade to `uri` is refused for its batch parameter, if it is. Only the native
    /// path reads it: a Phoenix client's query holds its own `connect` params.
    static func refusal(uri: String) -> PubSubError? {
        let path = uri.prefix { $0 != "?" }
        guard path == "/ws" || path == "/ws/" else { return nil }
        do throws(PubSubError) {
            _ = try requested(in: uri)
            return nil
        } catch {
            return error
        }
    }

    /// Whether the query of `uri` asks for batched frames.
    static func requested(in uri: String) throws(PubSubError) -> Bool {
        guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return false }
        var value: Substring?
        for pair in query.split(separator: "&") where pair == "batch" || pair.hasPrefix("batch=") {
            guard value == nil else { throw .badRequest("the batch query parameter is repeated") }
            value = pair.dropFirst("batch=".count)
        }
        switch value {
        case nil, "0": return false
        case "1": return true
        case let other?: throw .badRequest("the batch query parameter must be 0 or 1, not '\(other)'")
        }
    }
}
