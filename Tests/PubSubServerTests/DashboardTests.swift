import Foundation
import PubSubServer
import Testing

/// The dashboard at `/` and `/pubsub.js` (SPEC 8): served from the binary with the right
/// headers, and working in a real browser (headless Chromium through selenium).
@Suite("Dashboard")
struct DashboardTests {
    @Test func servesItsFilesFromTheBinary() async throws {
        try await AuthTests.withAuthServer { port, http in
            let expected = [
                ("/", "text/html; charset=utf-8", "<title>pubsub</title>"),
                ("/pubsub.js", "text/javascript; charset=utf-8", "export class PubSubClient"),
                ("/dashboard.js", "text/javascript; charset=utf-8", #"from "/pubsub.js""#),
                ("/dashboard.css", "text/css; charset=utf-8", ":root"),
            ]
            for (path, type, content) in expected {
                // No token: the files hold no data (the API they call needs one).
                let response = try await http.get(path)
                #expect(response.status == 200, "\(path)")
                #expect(response.headers["content-type"] == type, "\(path)")
                #expect(response.headers["cache-control"] == "no-cache", "\(path)")
                #expect(response.text.contains(content), "\(path)")
                #expect(response.headers["x-content-type-options"] == "nosniff", "\(path)")
                #expect((response.headers["content-security-policy"] != nil) == (path == "/"), "\(path)")
                let etag = try #require(response.headers["etag"], "\(path)")

                let connection = try await RawConnection.connect(port: port)
                try await connection.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: W/\"0\", \(etag)\r\n\r\n")
                let cached = try await connection.response()
                #expect(cached.status == 304, "\(path)")
                #expect(cached.body.isEmpty && cached.headers["etag"] == etag, "\(path)")
                try await connection.channel.close()

                let stale = try await RawConnection.connect(port: port)
                try await stale.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: \"0\"\r\n\r\n")
                #expect(try await stale.response().status == 200, "\(path)")
                try await stale.channel.close()
            }
            let post = try await http.post("/", "{}")
            #expect(post.status == 405 && post.headers["allow"] == "GET" && post.json["code"] as? String == "METHOD_NOT_ALLOWED")
            #expect(try await http.get("/api/stats").status == 401)
            let unknown = try await http.get("/index.html")
            #expect(unknown.status == 404 && unknown.json["code"] as? String == "NOT_FOUND")
        }
    }

    /// Tests/Browser/dashboard_test.py against a server without auth, then one with
    /// `--auth token`. Fails, rather than skips, without Chromium. With PUBSUB_SCREENSHOT=PATH
    /// (passed on to the script) it also saves a PNG of the page.
    @Test(.timeLimit(.minutes(3))) func inChromium() async throws {
        try await PythonScript.installDependencies(
            unless: ["sh", "-c", "python3 -c 'import selenium' && command -v chromium && command -v chromedriver"]
        )
        let started = Date()
        try await withServer { port, _ in
            let (status, text) = try await PythonScript.run(
                "Tests/Browser/dashboard_test.py", [String(port), "open"], timeout: 90)
            #expect(status == 0, "\(text)")
            #expect(text.contains("dashboard browser ok (open)"), "\(text)")
        }
        let jwt = try await AuthTests.token(sub: "sam", subscribe: ["secure"], publish: ["secure"])
        let refreshed = try await AuthTests.token(sub: "sam", subscribe: ["secure"], publish: ["secure"], expiresIn: 7_200)
        try await AuthTests.withAuthServer { port, _ in
            let (status, text) = try await PythonScript.run(
                "Tests/Browser/dashboard_test.py", [String(port), "auth", AuthTests.apiKey, jwt, refreshed], timeout: 60
            )
            #expect(status == 0, "\(text)")
            #expect(text.contains("dashboard browser ok (auth)"), "\(text)")
        }
        print("dashboard browser test took \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }
}
