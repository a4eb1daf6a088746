import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// A one-request HTTP/1.1 client on raw TCP (`Connection: close`, read to EOF), enough to
/// check statuses, headers and JSON bodies of the REST API.
struct TestHTTP {
    struct Response {
        let status: Int
        let headers: [String: String]
        let body: [UInt8]
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let port: Int
    /// Sent as `Authorization: Bearer …` when set.
    var bearer: String? = nil
    /// HTTPS with this client context when set.
    var tls: NIOSSLContext? = nil

    func get(_ path: String) async throws -> Response { try await request("GET", path) }
    func delete(_ path: String) async throws -> Response { try await request("DELETE", path) }
    func post(_ path: String, _ body: String) async throws -> Response { try await request("POST", path, body: Array(body.utf8)) }
    func post(_ path: String, json: [String: Any]) async throws -> Response {
        try await request("POST", path, body: Array(try JSONSerialization.data(withJSONObject: json)))
    }

    func request(_ method: String, _ path: String, body: [UInt8]? = nil) async throws -> Response {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: nil)) }
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var request = ByteBuffer(string: "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n")
        if let bearer { request.writeString("Authorization: Bearer \(bearer)\r\n") }
        if let body {
            request.writeString("Content-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n")
            request.writeBytes(body)
        } else {
            request.writeString("\r\n")
        }
        try await channel.writeAndFlush(request).get()
        try await channel.closeFuture.get()
        return try Self.parse(collector.bytes.withLockedValue { $0 })
    }

    static func parse(_ bytes: [UInt8]) throws -> Response {
        guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { throw TestError("no HTTP head in \(bytes.count) bytes") }
        let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw TestError("bad status line \(head[0])") }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[end.upperBound...])
        if headers["transfer-encoding"] == "chunked" {
            var decoded: [UInt8] = []
            var rest = body[...]
            while let lineEnd = rest.firstRange(of: Array("\r\n".utf8)),
                let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16), size > 0
            {
                decoded += rest[lineEnd.upperBound..<(lineEnd.upperBound + size)]
                rest = rest[(lineEnd.upperBound + size + 2)...]
            }
            body = decoded
        }
        return Response(status: status, headers: headers, body: body)
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let bytes = NIOLockedValueBox<[UInt8]>([])
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            let chunk = buffer.readBytes(length: buffer.readableBytes) ?? []
            bytes.withLockedValue { $0 += chunk }
        }
    }
}
