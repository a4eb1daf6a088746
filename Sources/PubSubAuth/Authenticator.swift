import Crypto
import Foundation
import JWTKit
import NIOCore
import PubSubCore

/// Checks bearer credentials (SPEC 7): an API key (compared in constant time), or a JWT signed
/// with the HS256 secret or the RS256/ES256 public key, with `exp`. Tokens never reach a log:
/// errors say what was wrong, not what was sent.
///
///     let authenticator = try Authenticator(settings)
///     let grant = try await authenticator.grant(for: "eyJhbGciOi…")
public final class Authenticator: Sendable {
    /// A key collection per algorithm, chosen by the token header's `alg`: a token is only
    /// ever checked with a key of the algorithm it names (HS256 against the secret, RS256 and
    /// ES256 against the public key), and any other `alg`, `none` included, is refused.
    private let keysByAlgorithm: Task<[String: JWTKeyCollection], Never>
    private let apiKeyDigests: [SHA256.Digest]

    /// The claims of a client token (SPEC 7).
    public struct Claims: JWTPayload {
        public var sub: SubjectClaim?
        public var exp: ExpirationClaim
        public var subscribe: [String]?
        public var publish: [String]?
        public var admin: Bool?

        public init(sub: String?, expires: Date, subscribe: [String]?, publish: [String]?, admin: Bool?) {
            self.sub = sub.map(SubjectClaim.init(value:))
            self.exp = ExpirationClaim(value: expires)
            self.subscribe = subscribe
            self.publish = publish
            self.admin = admin
        }

        public func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired()
        }
    }

    /// A client token with `claims`, signed HS256 with `secret` (`pubsub token`, tests).
    public static func mint(_ claims: Claims, secret: String) async throws -> String {
        try await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256).sign(claims)
    }

    public struct Settings: Sendable {
        public var jwtSecret: String?
        /// A PEM public key: RSA (RS256) or P-256 (ES256).
        public var jwtPublicKeyPEM: String?
        public var apiKeys: [String]

        public init(jwtSecret: String? = nil, jwtPublicKeyPEM: String? = nil, apiKeys: [String] = []) {
            self.jwtSecret = jwtSecret
            self.jwtPublicKeyPEM = jwtPublicKeyPEM
            self.apiKeys = apiKeys
        }
    }

    /// Checks the settings at once (a key that does not parse stops the server at start); the
    /// key collections, whose setup is asynchronous, are ready by the first check.
    public init(_ settings: Settings) throws(AuthSetupError) {
        if let secret = settings.jwtSecret, secret.utf8.count < 32 {
            throw AuthSetupError(description: "--jwt-secret must be at least 32 bytes (HS256 needs a 256-bit key)")
        }
        enum PublicKey: Sendable { case rsa(JWTKit.Insecure.RSA.PublicKey), ec(ES256PublicKey) }
        var publicKey: PublicKey?
        if let pem = settings.jwtPublicKeyPEM {
            if let rsa = try? JWTKit.Insecure.RSA.PublicKey(pem: pem) {
                publicKey = .rsa(rsa)
            } else if let ec = try? ES256PublicKey(pem: pem) {
                publicKey = .ec(ec)
            } else {
                throw AuthSetupError(description: "the JWT public key is neither an RSA nor a P-256 public key in PEM")
            }
        }
        let secret = settings.jwtSecret
        let key = publicKey
        self.keysByAlgorithm = Task {
            var keys: [String: JWTKeyCollection] = [:]
            if let secret {
                keys["HS256"] = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            }
            switch key {
            case .some(.rsa(let rsa)): keys["RS256"] = await JWTKeyCollection().add(rsa: rsa, digestAlgorithm: .sha256)
            case .some(.ec(let ec)): keys["ES256"] = await JWTKeyCollection().add(ecdsa: ec)
            case .none: break
            }
            return keys
        }
        self.apiKeyDigests = settings.apiKeys.map { SHA256.hash(data: Data($0.utf8)) }
    }

    public struct AuthSetupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The `alg` of a JWT's header, or nil when it has none or is not a JWT.
    public static func algorithm(of token: String) -> String? {
        guard let end = token.firstIndex(of: ".") else { return nil }
        var text = String(token[..<end]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text),
            let header = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return header["alg"] as? String
    }

    /// What `credential` (an API key or a JWT) allows; UNAUTHORIZED when it is neither valid
    /// nor current.
    public func grant(for credential: String) async throws(PubSubError) -> Grant {
        if isAPIKey(credential) { return .everything }
        guard credential.utf8.count <= 8_192, let algorithm = Self.algorithm(of: credential),
            let keys = await keysByAlgorithm.value[algorithm]
        else {
            throw PubSubError(.unauthorized, "invalid token")
        }
        let claims: Claims
        do {
            claims = try await keys.verify(credential, as: Claims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw PubSubError(.unauthorized, "token expired")
        } catch {
            throw PubSubError(.unauthorized, "invalid token")
        }
        func patterns(_ texts: [String]?, _ claim: String) throws(PubSubError) -> [TopicPattern] {
            var patterns: [TopicPattern] = []
            for text in texts ?? [] {
                guard let pattern = TopicPattern(text) else { throw PubSubError(.unauthorized, "invalid token: bad pattern in '\(claim)'") }
                patterns.append(pattern)
            }
            return patterns
        }
        return Grant(
            user: claims.sub?.value, subscribe: try patterns(claims.subscribe, "subscribe"), publish: try patterns(claims.publish, "publish"),
            admin: claims.admin ?? false, expiresAtMillis: Self.millis(claims.exp.value)
        )
    }

    /// The latest expiry a grant holds, the end of year 9999: timestamps have four-digit years,
    /// and an `exp` of 1e300 (any number is valid JSON) must not trap in the conversion.
    static let latestExpiryMillis: Int64 = 253_402_300_799_999

    static func millis(_ expiry: Date) -> Int64 {
        let millis = expiry.timeIntervalSince1970 * 1000
        return millis < Double(latestExpiryMillis) ? Int64(millis) : latestExpiryMillis
    }

    /// The same, as a future on `loop` (for the WebSocket upgrade and the session).
    public func grant(for credential: String, on loop: any EventLoop) -> EventLoopFuture<Grant> {
        let promise = loop.makePromise(of: Grant.self)
        promise.completeWithTask { try await self.grant(for: credential) }
        return promise.futureResult
    }

    /// Constant time in the key's contents: the digests are compared whole.
    private func isAPIKey(_ credential: String) -> Bool {
        guard !apiKeyDigests.isEmpty else { return false }
        let digest = SHA256.hash(data: Data(credential.utf8))
        var found = false
        for key in apiKeyDigests where key == digest { found = true }
        return found
    }
}
