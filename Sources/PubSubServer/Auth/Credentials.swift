import Foundation
import HTTPTypes
import NIOHTTP1
import PubSubCore

/// Where a request carries its credential (SPEC 7), and the refusals before any check.
enum Credentials {
    /// `Authorization: Bearer …`, else the `token` query parameter (browsers cannot set headers
    /// on a WebSocket; Phoenix clients send their socket params in the query).
    static func fromUpgrade(_ head: HTTPRequestHead) -> String? {
        if let bearer = bearer(head.headers.first(name: "Authorization")) { return bearer }
        guard let query = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in query.split(separator: "&") where pair.hasPrefix("token=") {
            let value = String(pair.dropFirst("token=".count))
            return value.removingPercentEncoding.flatMap { $0.isEmpty ? nil : $0 }
        }
        return nil
    }

    /// The token of an `Authorization: Bearer …` value.
    static func bearer(_ authorization: String?) -> String? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    static let missing = PubSubError(.unauthorized, "a token is required: Authorization: Bearer, or the token query parameter")

    /// 403 for a browser upgrade from an origin not in `allowed` (none listed: any origin).
    /// Clients that are not browsers send no `Origin` and are not refused for it.
    static func originRefusal(_ headers: HTTPHeaders, allowed: [String]) -> PubSubError? {
        guard !allowed.isEmpty, let origin = headers.first(name: "Origin") else { return nil }
        if allowed.contains(where: { $0.caseInsensitiveCompare(origin) == .orderedSame }) { return nil }
        return PubSubError(.forbidden, "origin '\(origin)' is not allowed", context: ["origin": origin])
    }
}
