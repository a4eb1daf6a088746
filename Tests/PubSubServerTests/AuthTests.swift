import Crypto
import CryptoExtras
import Foundation
import JWTKit
import PubSubAuth
import PubSubServer
import Testing

/// SPEC 7 over real sockets: tokens on the upgrade, rights per topic, refresh and expiry,
/// REST rights, API keys, Phoenix params, origins, and secrets kept out of the logs.
@Suite("Authentication and rights")
struct AuthTests {
    static let secret = "a-test-secret-of-at-least-32-bytes!!"
    static let apiKey = "key-for-servers-and-operators-0001"

    static func token(
        sub: String? = "alice", subscribe: [String]? = nil, publish: [String]? = nil, admin: Bool? = nil, expiresIn: TimeInterval = 3_600,
        secret: String = AuthTests.secret
    ) async throws -> String {
        try await Authenticator.mint(
            .init(sub: sub, expires: Date().addingTimeInterval(expiresIn), subscribe: subscribe, publish: publish, admin: admin), secret: secret
        )
    }

    static func withAuthServer<T>(
        _ configure: (inout ServerConfiguration) -> Void = { _ in }, _ body: (_ port: Int, _ http: TestHTTP) async throws -> T
    ) async throws -> T {
        try await withServer({
            $0.auth = .token
            $0.jwtSecret = secret
            $0.apiKeys = [apiKey]
            configure(&$0)
        }, body)
    }

    /// The status and JSON error code of an upgrade request (`extra`: more header lines).
    static func upgrade(_ port: Int, path: String = "/ws", extra: String = "") async throws -> (status: Int, code: String?) {
        let connection = try await RawConnection.connect(port: port)
        try await connection.send(
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\(extra)\r\n"
        )
        let response = try await connection.response()
        return (response.status, (response.json["code"] as? String))
    }

    @Test func upgradeNeedsAValidCurrentToken() async throws {
        try await Self.withAuthServer { port, _ in
            #expect(try await Self.upgrade(port) == (401, "UNAUTHORIZED"))
            #expect(try await Self.upgrade(port, extra: "Authorization: Bearer not.a.token\r\n") == (401, "UNAUTHORIZED"))
            let forged = try await Self.token(secret: "another-secret-that-is-32-bytes-long!")
            #expect(try await Self.upgrade(port, extra: "Authorization: Bearer \(forged)\r\n") == (401, "UNAUTHORIZED"))
            let expired = try await Self.token(expiresIn: -60)
            #expect(try await Self.upgrade(port, extra: "Authorization: Bearer \(expired)\r\n") == (401, "UNAUTHORIZED"))
            // alg "none": refused, whatever the claims say.
            let header = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URLEncodedString()
            let claims = Data(#"{"sub":"mallory","exp":4102444800,"admin":true}"#.utf8).base64URLEncodedString()
            #expect(try await Self.upgrade(port, extra: "Authorization: Bearer \(header).\(claims).\r\n") == (401, "UNAUTHORIZED"))

            let good = try await Self.token(subscribe: [">"])
            #expect(try await Self.upgrade(port, extra: "Authorization: Bearer \(good)\r\n").status == 101)
            #expect(try await Self.upgrade(port, path: "/ws?token=\(good)").status == 101)
            #expect(try await Self.upgrade(port, extra: "Authorization: Bearer \(Self.apiKey)\r\n").status == 101)
        }
    }

    /// A subscribe or publish outside the token's rights gets FORBIDDEN; the connection stays.
    @Test func rightsPerTopic() async throws {
        try await Self.withAuthServer { port, http in
            let admin = TestHTTP(port: port, bearer: Self.apiKey)
            for name in ["orders.eu", "orders.us", "secret"] { _ = try await admin.post("/api/topics", json: ["name": name]) }
            let token = try await Self.token(subscribe: ["orders.*"], publish: ["orders.eu"])
            let ws = try await connect(port, path: "/ws?token=\(token)")
            try await ws.send(json: ["type": "subscribe", "topic": "secret", "request_id": "s1"])
            let refused = try await ws.next(type: "error")
            #expect((refused["error"] as? [String: Any])?["code"] as? String == "FORBIDDEN")
            #expect(refused["request_id"] as? String == "s1")
            try await subscribe(ws, "orders.eu")
            try await ws.send(json: ["type": "publish", "topic": "orders.us", "message": 1, "request_id": "p1"])
            let notPublished = try await ws.next(type: "error")
            #expect((notPublished["error"] as? [String: Any])?["code"] as? String == "FORBIDDEN")
            try await ws.send(json: ["type": "publish", "topic": "orders.eu", "message": 2, "request_id": "p2"])
            // The event (it is subscribed) and the ack, in either order.
            let frames = [try await ws.next(), try await ws.next()]
            #expect(frames.contains { $0["type"] as? String == "ack" && $0["request_id"] as? String == "p2" })
            let event = frames.first { $0["type"] as? String == "event" }
            #expect(event?["seq"] as? Int == 1, "the refused publish was not published")
            try await ws.send(json: ["type": "ping", "request_id": "still"])
            #expect(try await ws.next(type: "pong")["request_id"] as? String == "still")
            await ws.close()
        }
    }

    /// Every /api route but health and ready needs a bearer; admin for the topic lifecycle
    /// and stats, rights per topic for reading and publishing; an API key has every right.
    @Test func restRights() async throws {
        try await Self.withAuthServer { port, anonymous in
            #expect(try await anonymous.get("/api/health").status == 200)
            #expect(try await anonymous.get("/api/ready").status == 200)
            let refused = try await anonymous.get("/api/topics")
            #expect(refused.status == 401)
            #expect(refused.headers["www-authenticate"] == "Bearer")
            #expect(refused.json["code"] as? String == "UNAUTHORIZED")
            #expect(try await anonymous.post("/api/topics/t/messages", json: ["message": 1]).status == 401)
            #expect(try await TestHTTP(port: port, bearer: "wrong").get("/api/stats").status == 401)

            let user = TestHTTP(port: port, bearer: try await Self.token(subscribe: ["t"], publish: ["t"]))
            #expect(try await user.post("/api/topics", json: ["name": "t"]).status == 403)
            let admin = TestHTTP(port: port, bearer: try await Self.token(admin: true))
            #expect(try await admin.post("/api/topics", json: ["name": "t"]).status == 201)
            #expect(try await TestHTTP(port: port, bearer: Self.apiKey).post("/api/topics", json: ["name": "u"]).status == 201)
            #expect(try await user.get("/api/topics").status == 403)
            #expect(try await user.get("/api/stats").status == 403)
            #expect(try await admin.get("/api/stats").status == 200)
            #expect(try await user.post("/api/topics/t/messages", json: ["message": 1]).status == 200)
            #expect(try await user.post("/api/topics/u/messages", json: ["message": 1]).status == 403)
            #expect(try await user.post("/api/broadcast", json: ["topic": "u", "message": 1]).status == 403)
            #expect(try await user.get("/api/topics/t/messages").status == 200)
            #expect(try await user.get("/api/topics/u").status == 403)
            #expect(try await user.delete("/api/topics/t").status == 403)
            #expect(try await admin.delete("/api/topics/t").status == 200)
        }
    }

    /// A refresh replaces the token before it expires; without one the connection gets
    /// UNAUTHORIZED "token expired" and a close with 1008. A bad refresh changes nothing.
    @Test func refreshAndExpiry() async throws {
        try await Self.withAuthServer { port, _ in
            let (refreshed, lapsing) = try await Self.twoConnectionsOnAShortLivedToken(port)
            try await refreshed.send(json: ["type": "refresh", "token": "not.a.token", "request_id": "bad"])
            let bad = try await refreshed.next(type: "error")
            #expect((bad["error"] as? [String: Any])?["code"] as? String == "UNAUTHORIZED")

            let (lastError, code) = try await lapsing.readToClose(timeout: 30)
            #expect(lastError == "UNAUTHORIZED")
            #expect(code == 1008)
            try await refreshed.send(json: ["type": "ping", "request_id": "alive"])
            #expect(try await refreshed.next(type: "pong")["request_id"] as? String == "alive")
            await refreshed.close()
            await lapsing.close()
        }
    }

    /// Two connections on one token that lapses 10 s after it is made, the first with its
    /// refresh acknowledged. Under the sanitizers, with the whole suite on two cores, the
    /// upgrades and the refresh have taken longer than that: the server was then right to
    /// refuse the lapsed token, so the setup starts again with a new one (three times at
    /// most). Anything else that goes wrong, or goes wrong in time, is the test's failure.
    static func twoConnectionsOnAShortLivedToken(_ port: Int) async throws -> (refreshed: TestWebSocket, lapsing: TestWebSocket) {
        let lifetime: TimeInterval = 10
        for attempt in 1...3 {
            let minted = Date()
            let shortLived = try await Self.token(subscribe: [">"], expiresIn: lifetime)
            var opened: [TestWebSocket] = []
            do {
                let refreshed = try await connect(port, path: "/ws?token=\(shortLived)")
                opened.append(refreshed)
                let lapsing = try await connect(port, path: "/ws?token=\(shortLived)")
                opened.append(lapsing)
                try await refreshed.send(json: ["type": "refresh", "token": try await Self.token(subscribe: [">"]), "request_id": "r"])
                let ack = try await refreshed.next(type: "ack")
                #expect(ack["action"] as? String == "refreshed")
                #expect(ack["expires_at"] is String)
                return (refreshed, lapsing)
            } catch where attempt < 3 && Date().timeIntervalSince(minted) >= lifetime - 1 {
                for connection in opened { await connection.close() }
            }
        }
        throw TestError("unreachable: the third attempt returns or throws")
    }

    /// RS256 and ES256 tokens against a public key in PEM (keys made by the test), HS256
    /// against the secret; a token of another algorithm than the server's keys is refused.
    @Test(arguments: ["RS256", "ES256"])
    func publicKeyAlgorithms(_ algorithm: String) async throws {
        let keys = JWTKeyCollection()
        let publicPEM: String
        if algorithm == "RS256" {
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            publicPEM = key.publicKey.pemRepresentation
            await keys.add(rsa: try Insecure.RSA.PrivateKey(pem: key.pemRepresentation), digestAlgorithm: .sha256)
        } else {
            let key = P256.Signing.PrivateKey()
            publicPEM = key.publicKey.pemRepresentation
            await keys.add(ecdsa: try ES256PrivateKey(pem: key.pemRepresentation))
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pubsub-\(algorithm)-\(UUID().uuidString).pem")
        try publicPEM.write(to: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: path) }
        let signed = try await keys.sign(
            Authenticator.Claims(sub: "bob", expires: Date().addingTimeInterval(600), subscribe: ["t"], publish: nil, admin: nil)
        )
        try await withServer({
            $0.auth = .token
            $0.jwtPublicKeyPath = path.path
        }) { port, _ in
            #expect(try await Self.upgrade(port, extra: "Authorization: Bearer \(signed)\r\n").status == 101)
            // No secret configured: an HS256 token is refused, however it is signed.
            let hs256 = try await Self.token()
            #expect(try await Self.upgrade(port, extra: "Authorization: Bearer \(hs256)\r\n") == (401, "UNAUTHORIZED"))
        }
    }

    /// Phoenix clients pass the token in their socket params (the query string).
    @Test func phoenixSocketParams() async throws {
        try await Self.withAuthServer { port, _ in
            #expect(try await Self.upgrade(port, path: "/ws/websocket?vsn=2.0.0") == (401, "UNAUTHORIZED"))
            #expect(try await TestHTTP(port: port, bearer: Self.apiKey).post("/api/topics", json: ["name": "other"]).status == 201)
            let token = try await Self.token(subscribe: ["t"])
            let client = PhoenixClient(ws: try await TestWebSocket.connect(port: port, path: "/ws/websocket?vsn=2.0.0&token=\(token)"), vsn: 2)
            _ = try await client.join()
            try await client.send("1", "2", "pubsub", "subscribe", ["topic": "other"])
            let reply = try await client.next(event: "phx_reply")
            #expect(reply.payload["status"] as? String == "error")
            let error = (reply.payload["response"] as? [String: Any])?["error"] as? [String: Any]
            #expect(error?["code"] as? String == "FORBIDDEN")

            // The refresh event: a bad token is refused and the old one stays; a good one
            // replaces it, rights included (the refused topic is allowed now).
            try await client.send("1", "3", "pubsub", "refresh", ["token": "not.a.token"])
            let bad = try await client.next(event: "phx_reply")
            #expect(bad.ref == "3" && bad.payload["status"] as? String == "error")
            #expect(((bad.payload["response"] as? [String: Any])?["error"] as? [String: Any])?["code"] as? String == "UNAUTHORIZED")
            try await client.send("1", "4", "pubsub", "refresh", ["token": try await Self.token(subscribe: ["t", "other"])])
            let refreshed = try await client.next(event: "phx_reply")
            #expect(refreshed.ref == "4" && refreshed.payload["status"] as? String == "ok")
            #expect((refreshed.payload["response"] as? [String: Any])?["action"] as? String == "refreshed")
            try await client.send("1", "5", "pubsub", "subscribe", ["topic": "other"])
            let subscribed = try await client.next(event: "phx_reply")
            #expect(subscribed.ref == "5" && subscribed.payload["status"] as? String == "ok", "\(subscribed.payload)")
            await client.ws.close()
        }
    }

    /// An `exp` centuries away, or as large as JSON allows, is a valid token: the connection is
    /// accepted and its expiry reported as the end of year 9999 (a server once trapped
    /// converting it; FuzzJWT found it).
    @Test func farFutureExpiry() async throws {
        try await Self.withAuthServer { port, _ in
            for seconds in [32_503_680_000.0, 1e300] {
                let token = try await Authenticator.mint(
                    .init(sub: "far", expires: Date(timeIntervalSince1970: seconds), subscribe: [">"], publish: nil, admin: nil), secret: Self.secret
                )
                let ws = try await connect(port, path: "/ws?token=\(token)")
                try await ws.send(json: ["type": "refresh", "token": token, "request_id": "r"])
                let ack = try await ws.next(type: "ack")
                #expect(ack["expires_at"] as? String == (seconds > 1e12 ? "9999-12-31T23:59:59.999Z" : "3000-01-01T00:00:00.000Z"))
                try await ws.send(json: ["type": "ping", "request_id": "alive"])
                #expect(try await ws.next(type: "pong")["request_id"] as? String == "alive")
                await ws.close()
            }
        }
    }

    /// With --allowed-origins, a browser upgrade from another origin gets 403; clients that
    /// send no Origin are not browsers and pass.
    @Test func allowedOrigins() async throws {
        try await withServer({ $0.allowedOrigins = ["https://app.example"] }) { (port: Int, _: TestHTTP) async throws in
            #expect(try await Self.upgrade(port, extra: "Origin: https://app.example\r\n").status == 101)
            #expect(try await Self.upgrade(port, extra: "Origin: https://evil.example\r\n") == (403, "FORBIDDEN"))
            #expect(try await Self.upgrade(port).status == 101)
        }
    }

    /// `pubsub token` mints a token the server accepts; no secret, token or API key reaches
    /// the server's log, even at trace level and on refusals.
    @Test func tokenCommandAndQuietLogs() async throws {
        let minted = try await ServerProcess.run(
            ["token", "--secret", Self.secret, "--sub", "carol", "--subscribe", "orders.>", "--publish", "orders.eu", "--ttl", "600"]
        )
        #expect(minted.status == 0)
        let token = minted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.split(separator: ".").count == 3)

        let server = try await ServerProcess([
            "--auth", "token", "--jwt-secret", Self.secret, "--api-key", Self.apiKey, "--log-level", "trace",
        ])
        defer { server.stop() }
        #expect(try await Self.upgrade(server.port, path: "/ws?token=\(token)").status == 101)
        #expect(try await Self.upgrade(server.port, extra: "Authorization: Bearer \(token)x\r\n").status == 401)
        #expect(try await TestHTTP(port: server.port, bearer: Self.apiKey).post("/api/topics", json: ["name": "orders.eu"]).status == 201)
        #expect(try await TestHTTP(port: server.port, bearer: token).get("/api/topics/orders.eu").status == 200)
        try await Task.sleep(for: .milliseconds(200))
        let log = server.stderr
        #expect(!log.isEmpty)
        #expect(!log.contains(token.split(separator: ".")[2]), "no token signature in the log")
        #expect(!log.contains(Self.secret))
        #expect(!log.contains(Self.apiKey))
    }
}

extension Data {
    func base64URLEncodedString() -> String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
