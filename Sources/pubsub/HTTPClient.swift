import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import PubSubClient

/// A small HTTP/1.1 client for the CLI's calls to a server's REST API: one request per
/// connection, `http` or `https`, the whole response in memory, everything bounded by one
/// deadline. On NIO, which the binary links already, rather than async-http-client: its pool,
/// redirects and streaming would serve a handful of one-shot requests and add a package to
/// every CI build (debug, ASan, TSan).
struct HTTPClient: Sendable {
    struct Response: Sendable {
        let status: Int
        let body: ByteBuffer
    }

    /// The request never got an answer: no connection, no name, no TLS session or no response
    /// before the deadline. `reason` is short, for "cannot reach URL: reason".
    struct Unreachable: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    /// Largest response body kept; a stats document with thousands of topics is far below it.
    static let maxBodyBytes = 64 << 20

    let scheme: String
    let host: String
    let port: Int
    let basePath: String
    let tls: NIOSSLContext?
    let timeout: TimeAmount

    /// `url` is the server's base: `http[s]://host[:port][/prefix]`. `caCertificatePath` replaces
    /// the system's trust store with the certificates in that PEM file, as curl's `--cacert` does.
    init(url: String, caCertificatePath: String? = nil, timeout: TimeAmount = .seconds(10)) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            throw ClientUsageError("'\(url)' is not an http:// or https:// URL")
        }
        guard components.query == nil, components.fragment == nil, components.user == nil else {
            throw ClientUsageError("'\(url)' should be the server's base URL, without query, fragment or user")
        }
        self.scheme = scheme
        // URLComponents keeps the brackets of an IPv6 literal.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port ?? (scheme == "https" ? 443 : 80)
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        self.basePath = path
        self.timeout = timeout
        if scheme == "https" {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let caCertificatePath {
                let certificates: [NIOSSLCertificate]
                do {
                    certificates = try NIOSSLCertificate.fromPEMFile(caCertificatePath)
                } catch {
                    throw ClientUsageError("cannot read CA certificates from '\(caCertificatePath)': \(error)")
                }
                configuration.trustRoots = .certificates(certificates)
            }
            self.tls = try NIOSSLContext(configuration: configuration)
        } else {
            self.tls = nil
        }
    }

    /// `path` starts with "/" and is already percent-encoded.
    func request(_ method: HTTPMethod, _ path: String, json body: Data? = nil, bearer: String? = nil) async throws -> Response {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: hostHeader)
        headers.add(name: "User-Agent", value: "pubsub-cli")
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "Connection", value: "close")
        if let bearer { headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        let bodyBuffer = body.map { ByteBuffer(bytes: $0) }
        if bodyBuffer != nil { headers.add(name: "Content-Type", value: "application/json") }
        headers.add(name: "Content-Length", value: String(bodyBuffer?.readableBytes ?? 0))
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: basePath + path, headers: headers)

        let group = MultiThreadedEventLoopGroup.singleton
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: Response.self)
        let deadline = eventLoop.scheduleTask(in: timeout) { [timeout] in
            promise.fail(Unreachable(reason: "no response within \(Self.seconds(timeout)) s"))
        }
        let tls = self.tls
        // SNI carries names only; for an address BoringSSL checks the certificate against the
        // peer's address instead.
        let serverName = Self.isIPAddress(host) ? nil : host
        let connected = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls {
                        try pipeline.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    try pipeline.addHTTPClientHandlers()
                    try pipeline.addHandler(ResponseCollector(head: head, body: bodyBuffer, promise: promise))
                }
            }
            .connect(host: host, port: port)
        connected.whenFailure { promise.fail($0) }
        promise.futureResult.whenComplete { _ in
            deadline.cancel()
            connected.whenSuccess { $0.close(promise: nil) }
        }
        do {
            return try await promise.futureResult.get()
        } catch let error as Unreachable {
            throw error
        } catch {
            throw Unreachable(reason: Self.reason(error))
        }
    }

    private var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        let defaultPort = scheme == "https" ? 443 : 80
        return port == defaultPort ? name : "\(name):\(port)"
    }

    private static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }

    private static func seconds(_ amount: TimeAmount) -> String {
        let value = Double(amount.nanoseconds) / 1e9
        return value == value.rounded() ? String(Int(value)) : String(value)
    }

    /// A transport error in a few words: NIO's own descriptions name system calls and
    /// descriptors, which tell a user of the CLI nothing.
    static func reason(_ error: any Error) -> String {
        switch error {
        case let error as HTTPParserError:
            return "not an HTTP response (\(error)); is it an https:// server?"
        case let error as ResponseCollector.Failure:
            return error.description
        default:
            return withHint(PubSubClient.transportReason(error))
        }
    }
}

/// A transport reason, with what to do about an untrusted certificate.
func withHint(_ reason: String) -> String {
    reason.hasSuffix("is not trusted") ? reason + " (pass its CA with --cacert)" : reason
}

/// A URL or file the user gave that cannot be used: a usage error, not a server's refusal.
struct ClientUsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes the request once the connection is up (NIOSSLClientHandler holds it until the
/// handshake is done) and gathers the response.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let head: HTTPRequestHead
    private let requestBody: ByteBuffer?
    private let promise: EventLoopPromise<HTTPClient.Response>
    private var status: Int?
    private var body = ByteBuffer()

    init(head: HTTPRequestHead, body: ByteBuffer?, promise: EventLoopPromise<HTTPClient.Response>) {
        self.head = head
        self.requestBody = body
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let requestBody { context.write(wrapOutboundOut(.body(.byteBuffer(requestBody))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            status = Int(responseHead.status.code)
        case .body(var part):
            guard body.readableBytes + part.readableBytes <= HTTPClient.maxBodyBytes else {
                promise.fail(Failure(description: "response larger than \(HTTPClient.maxBodyBytes) bytes"))
                context.close(promise: nil)
                return
            }
            body.writeBuffer(&part)
        case .end:
            if let status { promise.succeed(.init(status: status, body: body)) }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(Failure(description: "the server closed the connection before it answered"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
