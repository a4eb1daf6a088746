import Foundation
import PubSubAuth
@testable import PubSubServer
import Testing

/// `GET /api/openapi.json` (SPEC 8): the document a node serves is valid OpenAPI 3.1, names every
/// route the router has, and says the truth about every answer, as schemathesis checks against
/// the live server with and without authentication.
@Suite("OpenAPI document")
struct OpenAPITests {
    static let checkers = ["schemathesis", "openapi_spec_validator"]

    /// The document's operations, as `METHOD /path` with `{name}` captures.
    static func operations(_ document: [String: Any]) -> Set<String> {
        let methods: Set = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
        let paths = document["paths"] as? [String: [String: Any]] ?? [:]
        return Set(paths.flatMap { path, item in item.keys.filter(methods.contains).map { "\($0.uppercased()) \(path)" } })
    }

    @Test func servedDocumentIsTheSourceFileAndValidOpenAPI31() async throws {
        try await PythonScript.requireModules(Self.checkers)
        try await withServer { port, http in
            let response = try await http.get("/api/openapi.json")
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "application/json")
            let source = PythonScript.root.appendingPathComponent("Sources/PubSubServer/REST/openapi.json")
            #expect(response.body == Array(try Data(contentsOf: source)), "the binary serves a stale copy of openapi.json")
            let (status, text) = try await PythonScript.run("Tests/OpenAPI/validate_openapi.py", [String(port)], timeout: 60)
            #expect(status == 0, "\(text)")
            #expect(text.contains("openapi document valid"), "\(text)")
        }
    }

    /// Needs no token with `--auth token` (clients read it to learn how to authenticate), and
    /// answers 405 to other methods like every known path.
    @Test func documentIsPublic() async throws {
        try await AuthTests.withAuthServer { port, http in
            #expect(try await http.get("/api/openapi.json").status == 200)
            #expect(try await http.get("/api/topics").status == 401)
            let refused = try await http.post("/api/openapi.json", "{}")
            #expect(refused.status == 405)
            #expect(refused.headers["allow"] == "GET")
        }
    }

    /// Every route the router registers under /api (and /metrics) is in the document, and every
    /// operation in the document is a route; on each documented path, other methods answer 405
    /// with `Allow` naming exactly the documented ones.
    @Test func everyRouteIsDocumented() async throws {
        try await withServer { port, http, server in
            let document = try #require(try JSONSerialization.jsonObject(with: Data(try await http.get("/api/openapi.json").body)) as? [String: Any])
            let documented = Self.operations(document)
            let routes = server.makeRouter().routes.filter { $0.path.description.hasPrefix("/api/") || $0.path.description == "/metrics" }
            let registered = Set(routes.map { "\($0.method.rawValue) \($0.path.description)" })
            #expect(registered.contains("GET /api/topics/{name}"), "the router's routes could not be read: \(registered)")

            for operation in registered.subtracting(documented) {
                Issue.record("\(operation) is routed but not in openapi.json")
            }
            for operation in documented.subtracting(registered) {
                // The lead's branch adds GET /metrics; until a build registers it, it is the one
                // operation allowed to be documented ahead of its route.
                let metricsPending = operation == "GET /metrics" && !registered.contains { $0.hasSuffix(" /metrics") }
                #expect(metricsPending, "\(operation) is in openapi.json but the router has no such route")
            }

            let byPath = Dictionary(grouping: documented.map { $0.split(separator: " ", maxSplits: 1) }) { String($0[1]) }
            for (path, operations) in byPath where registered.contains(where: { $0.hasSuffix(" \(path)") }) {
                let methods = Set(operations.map { String($0[0]) })
                let concrete = path.replacingOccurrences(of: "{name}", with: "orders")
                for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY"] where !methods.contains(method) {
                    let answer = try await http.request(method, concrete, body: method == "POST" || method == "PUT" ? Array("{}".utf8) : nil)
                    #expect(answer.status == 405, "\(method) \(path) answered \(answer.status)")
                    let allow = Set((answer.headers["allow"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                    #expect(allow == methods, "\(method) \(path): Allow \(allow), documented \(methods)")
                }
            }
        }
    }

    /// schemathesis runs under Tests/OpenAPI/serial_ast.py, which builds Python ASTs one thread
    /// at a time: on CPython 3.11 two threads building at once can fail with a SystemError (a
    /// CI run's schemathesis check failed so, whatever the server answered). The check races
    /// threads with and without the lock.
    @Test func schemathesisBuildsOneASTAtATime() async throws {
        let (status, text) = try await PythonScript.run("Tests/OpenAPI/serial_ast_check.py", [], timeout: 120)
        #expect(status == 0, "\(text)")
        #expect(text.contains("with the lock: 0 failed builds"), "\(text)")
    }

    @Test func schemathesisWithoutAuthentication() async throws {
        try await PythonScript.requireModules(Self.checkers)
        // Auto-creation lets generated publishes reach topics, so their 200s are checked too.
        try await withServer({ $0.autoCreateTopics = true }) { port, _ in
            let (status, text) = try await PythonScript.run(
                "Tests/OpenAPI/schemathesis_run.py",
                [String(port), "auth none", "--check", "unsupported_method", "--check", "allow_header_conformance", "--expect-status", "405"],
                timeout: 240
            )
            #expect(status == 0, "\(text)")
            #expect(text.contains("schemathesis ok: auth none"), "\(text)")
        }
    }

    /// An API key (every right; ignored_auth sends requests without it and with a bad one, for
    /// the 401s), then a JWT that may only read and publish `orders` (403 everywhere else). A
    /// publish rate brings out 429. Not --max-topics: its 507 is what SPEC 7 asks for, and
    /// not_a_server_error counts every 5xx (LimitsTests checks it).
    @Test func schemathesisWithTokens() async throws {
        try await PythonScript.requireModules(Self.checkers)
        try await AuthTests.withAuthServer({
            $0.publishRate = 20
            $0.publishBurst = 5
        }) { port, _ in
            let (status, text) = try await PythonScript.run(
                "Tests/OpenAPI/schemathesis_run.py",
                [String(port), "api key", "--bearer", AuthTests.apiKey, "--check", "ignored_auth", "--expect-status", "401", "--expect-status", "429"],
                timeout: 240
            )
            #expect(status == 0, "\(text)")
            #expect(text.contains("schemathesis ok: api key"), "\(text)")

            let narrow = try await AuthTests.token(subscribe: ["orders"], publish: ["orders"], admin: false)
            let (narrowStatus, narrowText) = try await PythonScript.run(
                "Tests/OpenAPI/schemathesis_run.py", [String(port), "narrow token", "--bearer", narrow, "--expect-status", "403"], timeout: 240
            )
            #expect(narrowStatus == 0, "\(narrowText)")
            #expect(narrowText.contains("schemathesis ok: narrow token"), "\(narrowText)")
        }
    }
}
