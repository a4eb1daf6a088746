import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1

/// What every command that talks to a running server takes (`topics`, `stats`, `pub`, `sub`).
struct ServerOptions: ParsableArguments {
    @Option(help: "The server's base URL, http:// or https://. (env PUBSUB_URL, default http://127.0.0.1:4000)")
    var url: String?

    @Option(help: "An API key or a JWT with admin rights, sent as Authorization: Bearer; needed when the server runs with --auth token. (env PUBSUB_TOKEN)")
    var token: String?

    @Option(help: "A PEM file of CA certificates to trust for https:// instead of the system's, as curl's --cacert. (env PUBSUB_CACERT)")
    var cacert: String?

    @Option(help: "Seconds to wait for the server to connect and answer. (default 10)")
    var timeout: Double = 10

    @Flag(help: "Print the server's JSON response as it is, for scripts.")
    var json = false

    func validate() throws {
        guard timeout > 0, timeout <= 3_600 else { throw ValidationError("--timeout must be between 0 and 3600 seconds") }
    }

    var resolvedURL: String {
        Self.environment("PUBSUB_URL", url) ?? "http://127.0.0.1:4000"
    }

    /// An empty value counts as unset, so `PUBSUB_TOKEN=` in a script sends no header.
    static func environment(_ name: String, _ flag: String?) -> String? {
        if let flag, !flag.isEmpty { return flag }
        if let value = ProcessInfo.processInfo.environment[name], !value.isEmpty { return value }
        return nil
    }

    /// Calls the server and returns its JSON body on a 2xx. Anything else ends the command with
    /// SPEC 8's exit codes: 1 with the server's error on stderr when it refused, 3 when it could
    /// not be reached. The token is never part of any message.
    func call(_ method: HTTPMethod, _ path: String, body: [String: String]? = nil) async throws -> ServerReply {
        let url = resolvedURL
        let client: HTTPClient
        do {
            client = try HTTPClient(
                url: url, caCertificatePath: Self.environment("PUBSUB_CACERT", cacert),
                timeout: .nanoseconds(Int64(timeout * 1e9))
            )
        } catch let error as ClientUsageError {
            throw ValidationError(error.description)
        }
        let token = Self.environment("PUBSUB_TOKEN", token)
        let response: HTTPClient.Response
        do {
            response = try await client.request(
                method, path, json: try body.map { try JSONSerialization.data(withJSONObject: $0) }, bearer: token
            )
        } catch let error as HTTPClient.Unreachable {
            printError("cannot reach \(url): \(error.reason)")
            throw ExitCode(3)
        }
        let data = Data(response.body.readableBytesView)
        let object = try? JSONSerialization.jsonObject(with: data)
        guard (200..<300).contains(response.status) else {
            let document = object as? [String: Any]
            if let message = document?["error"] as? String {
                let code = (document?["code"] as? String).map { " (\($0))" } ?? ""
                printError("\(message)\(code)")
            } else {
                printError("the server answered HTTP \(response.status) without a JSON error")
            }
            if response.status == 401, token == nil {
                printError("the server requires a token: pass --token or set PUBSUB_TOKEN")
            }
            throw ExitCode(1)
        }
        guard let document = object as? [String: Any] else {
            printError("the server answered HTTP \(response.status) without a JSON document; is \(url) a pubsub server?")
            throw ExitCode(1)
        }
        return ServerReply(raw: data, document: document)
    }

    /// `--json`: the body exactly as the server sent it, then a newline.
    func printRaw(_ reply: ServerReply) {
        FileHandle.standardOutput.write(reply.raw)
        if reply.raw.last != UInt8(ascii: "\n") { FileHandle.standardOutput.write(Data("\n".utf8)) }
    }
}

struct ServerReply {
    let raw: Data
    let document: [String: Any]
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
}

/// A topic name as one path segment: names are A-Z a-z 0-9 . _ - (SPEC 1), anything else is
/// escaped so that the server, not the URL, rejects it.
func pathSegment(_ name: String) -> String {
    var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(127)))
    allowed.insert(charactersIn: "._-~")
    return name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name
}

/// Plain-text rendering of the server's JSON for people.
enum Render {
    /// A JSON scalar as text: integers without a fraction, null as "-".
    static func value(_ value: Any?) -> String {
        guard let value else { return "-" }
        switch value {
        case is NSNull: return "-"
        case let string as String: return string
        case let int as Int: return String(int)
        case let double as Double:
            return double == double.rounded() && abs(double) < 1e15 ? String(Int(double)) : String(double)
        case let bool as Bool: return bool ? "true" : "false"
        case let other:
            if JSONSerialization.isValidJSONObject(other), let data = try? JSONSerialization.data(withJSONObject: other, options: [.sortedKeys]) {
                return String(decoding: data, as: UTF8.self)
            }
            return String(describing: other)
        }
    }

    /// Milliseconds with three decimals (latencies are often well under one).
    static func milliseconds(_ value: Any?) -> String {
        switch value {
        case let int as Int: return String(format: "%.3f", Double(int))
        case let double as Double: return String(format: "%.3f", double)
        default: return "-"
        }
    }

    /// Columns padded to their widest cell; `numeric` columns are right-aligned.
    static func table(_ header: [String], _ rows: [[String]], numeric: Set<Int> = []) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                if i == cells.count - 1 && !numeric.contains(i) { return cell }
                return numeric.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// "key  value" lines, the values aligned.
    static func keyValues(_ pairs: [(String, String)], indent: String = "") -> String {
        let width = pairs.map(\.0.count).max() ?? 0
        return pairs.map { key, value in indent + key + String(repeating: " ", count: width - key.count) + "  " + value }
            .joined(separator: "\n")
    }

    /// `latency_ms` {p50, p90, p99, max, samples} as rows, when the server reports it.
    static func latency(_ object: Any?) -> [(String, String)] {
        guard let latency = object as? [String: Any] else { return [] }
        var rows = ["p50", "p90", "p99", "max"].map { key in
            let text = milliseconds(latency[key])
            return ("latency \(key)", text == "-" ? text : text + " ms")
        }
        if let samples = latency["samples"] { rows.append(("latency samples", value(samples))) }
        return rows
    }
}
