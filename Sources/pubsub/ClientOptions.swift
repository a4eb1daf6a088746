import ArgumentParser
import Foundation
import NIOSSL
import PubSubClient

/// What `pub` and `sub` share: a ``PubSubClient`` built from the server options, and SPEC 8's
/// exit statuses for its errors.
extension ServerOptions {
    /// The server's base URL (`http(s)://host:port[/prefix]`) to its WebSocket endpoint.
    func makeClient() throws -> PubSubClient {
        let base = resolvedURL
        guard var components = URLComponents(string: base), let scheme = components.scheme?.lowercased(),
            ["http", "https", "ws", "wss"].contains(scheme), let host = components.host, !host.isEmpty
        else { throw ValidationError("'\(base)' is not an http:// or https:// URL") }
        guard components.query == nil, components.fragment == nil, components.user == nil else {
            throw ValidationError("'\(base)' should be the server's base URL, without query, fragment or user")
        }
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        if !path.hasSuffix("/ws") { path += "/ws" }
        components.percentEncodedPath = path
        var configuration = PubSubClientConfiguration()
        configuration.requestTimeout = .nanoseconds(Int64(timeout * 1e9))
        if let cacert = Self.environment("PUBSUB_CACERT", cacert) {
            var tls = TLSConfiguration.makeClientConfiguration()
            do {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(cacert))
            } catch {
                throw ValidationError("cannot read CA certificates from '\(cacert)': \(error)")
            }
            configuration.tls = tls
        }
        do {
            return try PubSubClient(url: components.string ?? base, token: Self.environment("PUBSUB_TOKEN", token), configuration: configuration)
        } catch {
            throw ValidationError("'\(base)' is not an http:// or https:// URL")
        }
    }

    /// Prints what went wrong and returns the exit status: 1 the server refused, 2 bad input,
    /// 3 the server cannot be reached (or went away before it answered).
    func failure(_ error: any Error) -> any Error {
        guard let error = error as? PubSubClientError else { return error }
        let url = resolvedURL
        switch error {
        case .unreachable(let reason):
            printError("cannot reach \(url): \(withHint(reason))")
            return ExitCode(3)
        case .timeout:
            printError("no answer from \(url) within \(Render.value(timeout)) s")
            return ExitCode(3)
        case .disconnected:
            printError("the connection to \(url) closed before the server answered")
            return ExitCode(3)
        case .upgradeRefused:
            printError(
                Self.environment("PUBSUB_TOKEN", token) == nil
                    ? "the server refused the WebSocket connection; it may require a token: pass --token or set PUBSUB_TOKEN"
                    : "the server refused the WebSocket connection (is the token valid?)"
            )
            return ExitCode(1)
        case .invalidURL, .invalidMessage:
            printError(error.description)
            return ExitCode(2)
        case .server, .topicDeleted, .closed:
            printError(error.description)
            return ExitCode(1)
        }
    }
}

/// Writes whole lines to stdout (and stderr) from several tasks without interleaving them.
final class LineWriter: Sendable {
    private let lock = NSLock()

    func out(_ line: String) {
        lock.withLock { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
    }

    func err(_ line: String) {
        lock.withLock { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }
}
