import Foundation
import NIOCore
import NIOPosix
import Testing

/// `pubsub topics …` and `pubsub stats` as a user runs them: the real binary against a real
/// server, its output and its exit status (SPEC 8: 0 ok, 1 refused, 2 usage, 3 unreachable).
@Suite("CLI")
struct CLITests {
    static func cli(_ arguments: [String], port: Int, scheme: String = "http", environment: [String: String] = [:]) async throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        try await ServerProcess.run(arguments + ["--url", "\(scheme)://127.0.0.1:\(port)"], environment: environment)
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test func topicsTablesAndJSON() async throws {
        try await withServer { port, http in
            var run = try await Self.cli(["topics", "create", "orders.eu"], port: port)
            #expect(run.status == 0)
            #expect(run.stdout == "created topic 'orders.eu'\n")
            run = try await Self.cli(["topics", "create", "audit", "--json"], port: port)
            #expect(run.status == 0)
            #expect(Self.json(run.stdout)["status"] as? String == "created")
            #expect(run.stdout.filter { $0 == "\n" }.count == 1, "one document, one line")
            #expect(try await http.post("/api/topics/orders.eu/messages", json: ["message": ["n": 1]]).status == 200)

            run = try await Self.cli(["topics", "list"], port: port)
            #expect(run.status == 0)
            let lines = run.stdout.split(separator: "\n")
            #expect(lines.count == 3)
            #expect(lines.first?.split(separator: " ", omittingEmptySubsequences: true) == ["NAME", "SUBSCRIBERS", "MESSAGES", "CREATED"])
            let orders = lines.first { $0.hasPrefix("orders.eu ") }.map { $0.split(separator: " ").map(String.init) }
            #expect(orders?.prefix(3) == ["orders.eu", "0", "1"])
            #expect(orders?.last?.hasPrefix("20") == true, "created as a timestamp: \(run.stdout)")
            // The columns line up: every row's second column ends where the header's does.
            let end = lines[0].range(of: "SUBSCRIBERS")!.upperBound.utf16Offset(in: lines[0])
            #expect(lines.allSatisfy { $0.count >= end && $0.prefix(end).last != " " })

            run = try await Self.cli(["topics", "list", "--json"], port: port)
            #expect(Self.json(run.stdout)["count"] as? Int == 2)

            run = try await Self.cli(["topics", "show", "orders.eu"], port: port)
            #expect(run.status == 0)
            let fields = Dictionary(
                run.stdout.split(separator: "\n").map { line -> (String, String) in
                    let parts = line.split(separator: " ", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    return (parts[0], parts.count > 1 ? parts[1] : "")
                }, uniquingKeysWith: { a, _ in a }
            )
            #expect(fields["name"] == "orders.eu")
            #expect(fields["subscribers"] == "0")
            #expect(fields["messages"] == "1")
            #expect(fields["seq"] == "1")
            #expect(fields["epoch"]?.isEmpty == false)
            #expect(fields["created"]?.hasPrefix("20") == true)
            run = try await Self.cli(["topics", "show", "orders.eu", "--json"], port: port)
            #expect(Self.json(run.stdout)["seq"] as? Int == 1)

            run = try await Self.cli(["topics", "delete", "orders.eu"], port: port)
            #expect(run.status == 0)
            #expect(run.stdout == "deleted topic 'orders.eu'\n")
            run = try await Self.cli(["topics", "delete", "audit", "--json"], port: port)
            #expect(Self.json(run.stdout)["status"] as? String == "deleted")
            run = try await Self.cli(["topics", "list"], port: port)
            #expect(run.stdout == "No topics.\n")
        }
    }

    @Test func stats() async throws {
        try await withServer { port, http in
            #expect(try await http.post("/api/topics", json: ["name": "orders"]).status == 201)
            #expect(try await http.post("/api/topics/orders/messages", json: ["message": "m"]).status == 200)
            var run = try await Self.cli(["stats"], port: port)
            #expect(run.status == 0)
            for section in ["system", "connections", "messages", "subscriptions"] {
                #expect(run.stdout.contains("\n\(section)"), "\(section) in \(run.stdout)")
            }
            #expect(run.stdout.range(of: #"\n  published +1\n"#, options: .regularExpression) != nil, "\(run.stdout)")
            #expect(run.stdout.range(of: #"\ntopics +1\n"#, options: .regularExpression) != nil, "\(run.stdout)")
            #expect(run.stdout.range(of: #"\n  orders +0 +1 +0 +1"#, options: .regularExpression) != nil, "\(run.stdout)")
            #expect(run.stdout.contains("memory (RSS)"))

            run = try await Self.cli(["stats", "--json"], port: port)
            #expect(run.status == 0)
            #expect((Self.json(run.stdout)["messages"] as? [String: Any])?["published"] as? Int == 1)

            // PUBSUB_URL when there is no --url.
            run = try await ServerProcess.run(["stats", "--json"], environment: ["PUBSUB_URL": "http://127.0.0.1:\(port)"])
            #expect(run.status == 0)
            #expect(Self.json(run.stdout)["system"] != nil)
        }
    }

    /// Latency is printed when the server reports it (the field is newer than some servers):
    /// a stand-in server answers with documents that have it.
    @Test func latencyWhenTheServerReportsIt() async throws {
        let latency = #""latency_ms":{"p50":0.25,"p90":1.5,"p99":3,"max":null,"samples":42}"#
        let topic = #"{"name":"orders","subscriber_count":2,"message_count":5,"created_at":"2026-12-05T13:00:00.000Z","seq":5,"epoch":"e1",\#(latency)}"#
        let show = try await CannedServer.start(response: topic)
        defer { show.close() }
        var run = try await Self.cli(["topics", "show", "orders"], port: show.port)
        #expect(run.status == 0)
        #expect(run.stdout.range(of: #"latency p50 +0\.250 ms\n"#, options: .regularExpression) != nil, "\(run.stdout)")
        #expect(run.stdout.range(of: #"latency p99 +3\.000 ms\n"#, options: .regularExpression) != nil, "\(run.stdout)")
        #expect(run.stdout.range(of: #"latency max +-\n"#, options: .regularExpression) != nil, "\(run.stdout)")
        #expect(run.stdout.range(of: #"latency samples +42\n"#, options: .regularExpression) != nil, "\(run.stdout)")

        let stats = #"{"system":{},"connections":{},"messages":{},"subscriptions":{},"topics":{"total_count":1,"details":[{"name":"orders","subscriber_count":2,"message_count":5,"dropped":0,"seq":5,\#(latency)}]}}"#
        let statsServer = try await CannedServer.start(response: stats)
        defer { statsServer.close() }
        run = try await Self.cli(["stats"], port: statsServer.port)
        #expect(run.status == 0)
        #expect(run.stdout.contains("P50 MS"), "\(run.stdout)")
        #expect(run.stdout.range(of: #"orders +2 +5 +0 +5 +0\.250 +1\.500 +3\.000 +-\n"#, options: .regularExpression) != nil, "\(run.stdout)")
    }

    @Test func refusalsExitOneWithTheServersError() async throws {
        try await withServer { port, _ in
            var run = try await Self.cli(["topics", "show", "missing"], port: port)
            #expect(run.status == 1)
            #expect(run.stdout.isEmpty)
            #expect(run.stderr == "error: topic 'missing' does not exist (TOPIC_NOT_FOUND)\n", "\(run.stderr)")
            run = try await Self.cli(["topics", "delete", "missing", "--json"], port: port)
            #expect(run.status == 1)
            #expect(run.stderr.contains("(TOPIC_NOT_FOUND)"))
            #expect(try await Self.cli(["topics", "create", "dup"], port: port).status == 0)
            run = try await Self.cli(["topics", "create", "dup"], port: port)
            #expect(run.status == 1)
            #expect(run.stderr.hasPrefix("error: ") && run.stderr.contains("dup"), "\(run.stderr)")
            // A name that is not one path segment reaches the server escaped, and it says why.
            run = try await Self.cli(["topics", "create", "a/b c"], port: port)
            #expect(run.status == 1)
            #expect(run.stderr.contains("(BAD_REQUEST)") || run.stderr.contains("may only contain"), "\(run.stderr)")
            run = try await Self.cli(["topics", "show", "../api/stats"], port: port)
            #expect(run.status == 1)
        }
    }

    @Test func usageErrorsExitTwo() async throws {
        let cases: [[String]] = [
            ["topics", "show"],
            ["topics", "list", "--bogus"],
            ["topics", "frobnicate"],
            ["stats", "--timeout", "0"],
            ["stats", "--url", "ftp://127.0.0.1:4000"],
            ["stats", "--url", "not a url"],
            ["stats", "--url", "https://127.0.0.1:4000", "--cacert", "/nonexistent/ca.pem"],
        ]
        for arguments in cases {
            let run = try await ServerProcess.run(arguments)
            #expect(run.status == 2, "\(arguments): \(run.stderr)")
            #expect(run.stderr.contains("Error") || run.stderr.contains("error"), "\(arguments): \(run.stderr)")
        }
        let help = try await ServerProcess.run(["topics", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("Exit status"))
    }

    @Test func unreachableServersExitThree() async throws {
        let reserved = try ReservedPort()
        defer { reserved.close() }
        let closed = reserved.port
        var run = try await Self.cli(["topics", "list"], port: closed)
        #expect(run.status == 3)
        #expect(run.stderr == "error: cannot reach http://127.0.0.1:\(closed): connection refused\n", "\(run.stderr)")

        // Accepts and never answers: the timeout ends it.
        let silent = try await CannedServer.start(response: nil)
        defer { silent.close() }
        let started = Date()
        run = try await Self.cli(["stats", "--timeout", "1"], port: silent.port)
        #expect(run.status == 3)
        #expect(run.stderr.contains("cannot reach http://127.0.0.1:\(silent.port)") && run.stderr.contains("no response within 1 s"), "\(run.stderr)")
        #expect(Date().timeIntervalSince(started) < 30)
    }

    @Test func tokens() async throws {
        let server = try await ServerProcess(["--auth", "token", "--api-key", AuthTests.apiKey])
        defer { server.stop() }
        var run = try await Self.cli(["topics", "list"], port: server.port)
        #expect(run.status == 1)
        #expect(run.stderr.contains("(UNAUTHORIZED)"), "\(run.stderr)")
        #expect(run.stderr.contains("pass --token or set PUBSUB_TOKEN"), "\(run.stderr)")

        run = try await Self.cli(["topics", "create", "secret", "--token", AuthTests.apiKey], port: server.port)
        #expect(run.status == 0, "\(run.stderr)")
        run = try await Self.cli(["topics", "list"], port: server.port, environment: ["PUBSUB_TOKEN": AuthTests.apiKey])
        #expect(run.status == 0)
        #expect(run.stdout.contains("secret"))
        run = try await Self.cli(["stats", "--token", AuthTests.apiKey], port: server.port)
        #expect(run.status == 0)
        #expect(!run.stdout.contains(AuthTests.apiKey) && !run.stderr.contains(AuthTests.apiKey))

        let wrong = AuthTests.apiKey + "-wrong"
        run = try await Self.cli(["topics", "show", "secret", "--token", wrong], port: server.port)
        #expect(run.status == 1)
        #expect(run.stderr.contains("(UNAUTHORIZED)"))
        #expect(!run.stderr.contains("pass --token"), "a token was given")
        #expect(!run.stderr.contains(wrong) && !run.stdout.contains(wrong), "the token is never printed")
    }

    @Test func https() async throws {
        let files = try TLSTests.makeCertificate()
        defer { try? FileManager.default.removeItem(atPath: (files.certificatePath as NSString).deletingLastPathComponent) }
        try await withServer({ $0.tls = .init(certificatePath: files.certificatePath, keyPath: files.keyPath) }) { port, _ in
            var run = try await Self.cli(["topics", "create", "secure", "--cacert", files.certificatePath], port: port, scheme: "https")
            #expect(run.status == 0, "\(run.stderr)")
            run = try await Self.cli(["topics", "list"], port: port, scheme: "https", environment: ["PUBSUB_CACERT": files.certificatePath])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("secure"))

            // Not in the system's trust store: refused before any request, as curl does.
            run = try await Self.cli(["topics", "list"], port: port, scheme: "https")
            #expect(run.status == 3)
            #expect(run.stderr.contains("cannot reach https://127.0.0.1:\(port)") && run.stderr.contains("not trusted (pass its CA with --cacert)"), "\(run.stderr)")
            run = try await Self.cli(["topics", "list", "--timeout", "5"], port: port)
            #expect(run.status == 3, "plain HTTP to a TLS port: \(run.stderr)")
        }
    }
}

/// A listener on 127.0.0.1 that answers every request with a canned JSON document, or, with
/// nil, accepts connections and never answers.
struct CannedServer {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    static func start(response: String?) async throws -> CannedServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(response: response))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return CannedServer(channel: channel)
    }

    func close() {
        channel.close(promise: nil)
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let response: String?
        var received = ""

        init(response: String?) { self.response = response }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
            guard let response, received.contains("\r\n\r\n") else { return }
            let message = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(response.utf8.count)\r\nConnection: close\r\n\r\n\(response)"
            // A few hundred bytes leave in this flush, before the close.
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: message)), promise: nil)
            context.close(promise: nil)
        }
    }
}

/// A TCP port of 127.0.0.1 held bound by a socket that never listens (and without
/// SO_REUSEADDR): connecting to it is refused, and no other socket of this machine can take the
/// port until `close()`. (A port only bound and closed again was free for the next port-0 bind of
/// a parallel test, whose listener then answered with a reset instead of a refusal.)
final class ReservedPort: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw TestError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(descriptor, raw, length) == 0 && getsockname(descriptor, raw, &length) == 0
            }
        }
        guard bound else {
            let reason = String(cString: strerror(errno))
            Glibc.close(descriptor)
            throw TestError("bind: \(reason)")
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        Glibc.close(descriptor)
    }
}
