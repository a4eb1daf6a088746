import ArgumentParser
import Foundation

/// Exit statuses of the commands that talk to a server (SPEC 8), for their help texts.
let clientExitCodes = """
    Exit status: 0 success; 1 the server refused (its error and code on stderr); \
    2 usage error; 3 the server cannot be reached (connection refused, unknown host, TLS, timeout).
    """

/// `pubsub topics …`: the REST API's topic routes from a shell.
struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, create, show and delete topics on a running server.",
        discussion: """
            Examples:
              pubsub topics list
              pubsub topics create orders --url https://pubsub.example.com
              pubsub topics show orders --json | jq .seq

            \(clientExitCodes)
            """,
        subcommands: [List.self, Create.self, Show.self, Delete.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the topics: name, subscribers, messages, created.", discussion: clientExitCodes
        )
        @OptionGroup var server: ServerOptions

        func run() async throws {
            let reply = try await server.call(.GET, "/api/topics")
            if server.json { return server.printRaw(reply) }
            let topics = reply.document["topics"] as? [[String: Any]] ?? []
            guard !topics.isEmpty else {
                print("No topics.")
                return
            }
            let rows = topics.map { topic in
                [topic["name"], topic["subscriber_count"], topic["message_count"], topic["created_at"]].map(Render.value)
            }
            print(Render.table(["NAME", "SUBSCRIBERS", "MESSAGES", "CREATED"], rows, numeric: [1, 2]))
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a topic (A-Z a-z 0-9 . _ -, at most 255 characters).", discussion: clientExitCodes
        )
        @OptionGroup var server: ServerOptions
        @Argument(help: "The topic's name.") var name: String

        func run() async throws {
            let reply = try await server.call(.POST, "/api/topics", body: ["name": name])
            if server.json { return server.printRaw(reply) }
            print("created topic '\(Render.value(reply.document["topic"] ?? name))'")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one topic: counts, seq and epoch, and delivery latency when the server measures it.",
            discussion: clientExitCodes
        )
        @OptionGroup var server: ServerOptions
        @Argument(help: "The topic's name.") var name: String

        func run() async throws {
            let reply = try await server.call(.GET, "/api/topics/\(pathSegment(name))")
            if server.json { return server.printRaw(reply) }
            var document = reply.document
            let known: [(key: String, label: String)] = [
                ("name", "name"), ("subscriber_count", "subscribers"), ("message_count", "messages"),
                ("created_at", "created"), ("seq", "seq"), ("epoch", "epoch"),
            ]
            var rows: [(String, String)] = []
            for (key, label) in known {
                if let value = document.removeValue(forKey: key) { rows.append((label, Render.value(value))) }
            }
            rows += Render.latency(document.removeValue(forKey: "latency_ms"))
            // Fields a newer server adds still show, under their JSON names.
            for key in document.keys.sorted() { rows.append((key, Render.value(document[key]))) }
            print(Render.keyValues(rows))
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a topic; its subscribers get topic_deleted.", discussion: clientExitCodes
        )
        @OptionGroup var server: ServerOptions
        @Argument(help: "The topic's name.") var name: String

        func run() async throws {
            let reply = try await server.call(.DELETE, "/api/topics/\(pathSegment(name))")
            if server.json { return server.printRaw(reply) }
            print("deleted topic '\(Render.value(reply.document["topic"] ?? name))'")
        }
    }
}

/// `pubsub stats`: GET /api/stats for people.
struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a running server's statistics: system, connections, messages, topics.",
        discussion: """
            Example: pubsub stats --url http://10.0.0.5:4000 --token "$API_KEY"

            \(clientExitCodes)
            """
    )
    @OptionGroup var server: ServerOptions

    func run() async throws {
        let reply = try await server.call(.GET, "/api/stats")
        if server.json { return server.printRaw(reply) }
        let document = reply.document
        var sections: [String] = []

        if let node = document["node"] as? [String: Any] {
            sections.append(Render.keyValues([("node", "\(Render.value(node["id"])) (engine \(Render.value(node["engine"])))")]))
        }
        let system = document["system"] as? [String: Any] ?? [:]
        sections.append(
            "system\n"
                + Render.keyValues(
                    [
                        ("uptime", "\(Render.value(system["uptime_seconds"])) s"),
                        ("started", Render.value(system["started_at"])),
                        ("memory (RSS)", Self.bytes(system["memory_rss_bytes"])),
                    ], indent: "  ")
        )
        let connections = document["connections"] as? [String: Any] ?? [:]
        sections.append(
            "connections\n"
                + Render.keyValues(
                    [("current", Render.value(connections["current"])), ("total opened", Render.value(connections["total_opened"]))],
                    indent: "  ")
        )
        let messages = document["messages"] as? [String: Any] ?? [:]
        sections.append(
            "messages\n"
                + Render.keyValues(
                    ["published", "delivered", "dropped"].map { ($0, Render.value(messages[$0])) }, indent: "  ")
        )
        let subscriptions = document["subscriptions"] as? [String: Any] ?? [:]
        sections.append(Render.keyValues([("subscriptions", Render.value(subscriptions["total_count"]))]))

        let topics = document["topics"] as? [String: Any] ?? [:]
        let details = topics["details"] as? [[String: Any]] ?? []
        var topicSection = "topics  \(Render.value(topics["total_count"]))"
        if !details.isEmpty {
            // Latency columns only when the server measures it (SPEC 8), so an older server's
            // table has no column of dashes.
            let withLatency = details.contains { $0["latency_ms"] is [String: Any] }
            var header = ["NAME", "SUBSCRIBERS", "MESSAGES", "DROPPED", "SEQ"]
            if withLatency { header += ["P50 MS", "P90 MS", "P99 MS", "MAX MS"] }
            let rows = details.map { topic -> [String] in
                var row = ["name", "subscriber_count", "message_count", "dropped", "seq"].map { Render.value(topic[$0]) }
                if withLatency {
                    let latency = topic["latency_ms"] as? [String: Any] ?? [:]
                    row += ["p50", "p90", "p99", "max"].map { Render.milliseconds(latency[$0]) }
                }
                return row
            }
            topicSection += "\n" + Render.table(header, rows, numeric: Set(1..<header.count))
                .split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
        }
        sections.append(topicSection)

        if let cluster = document["cluster"] as? [String: Any], let nodes = cluster["nodes"] as? [[String: Any]] {
            let rows = nodes.map { node in ["id", "connections", "subscriptions", "last_seen"].map { Render.value(node[$0]) } }
            sections.append(
                "cluster nodes\n"
                    + Render.table(["ID", "CONNECTIONS", "SUBSCRIPTIONS", "LAST SEEN"], rows, numeric: [1, 2])
                    .split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
            )
        }
        print(sections.joined(separator: "\n"))
    }

    private static func bytes(_ value: Any?) -> String {
        guard let bytes = value as? Int else { return Render.value(value) }
        return String(format: "%.1f MiB", Double(bytes) / 1_048_576) + " (\(bytes) bytes)"
    }
}
