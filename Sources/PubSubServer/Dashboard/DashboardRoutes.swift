import HTTPTypes
import Hummingbird
import NIOCore

/// The dashboard at `/` and the browser client at `/pubsub.js` (SPEC 8), served from the bytes
/// compiled into the binary. No auth: the files hold no data; the page's own API calls carry
/// the token the user gives it.
struct DashboardRoutes {
    /// One file: its bytes, type and entity tag, made once.
    struct Asset: Sendable {
        let body: ByteBuffer
        let contentType: String
        let etag: String
        let extraHeaders: HTTPFields

        init(_ bytes: [UInt8], contentType: String, extraHeaders: HTTPFields = [:]) {
            body = ByteBuffer(bytes: bytes)
            self.contentType = contentType
            self.extraHeaders = extraHeaders
            etag = "\"\(String(Self.fnv1a(bytes), radix: 16))\""
        }

        /// A content hash is enough for an entity tag: it changes when a new build changes the file.
        static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
            bytes.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        }
    }

    static let assets: [(path: String, asset: Asset)] = [
        // The page loads only its own files and talks only to its own server (connect-src 'self'
        // covers ws: of the same host); no other site may frame it.
        (
            "/",
            Asset(
                PackageResources.index_html, contentType: "text/html; charset=utf-8",
                extraHeaders: [
                    .contentSecurityPolicy:
                        "default-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
                ]
            )
        ),
        ("dashboard.css", Asset(PackageResources.dashboard_css, contentType: "text/css; charset=utf-8")),
        ("dashboard.js", Asset(PackageResources.dashboard_js, contentType: "text/javascript; charset=utf-8")),
        ("pubsub.js", Asset(PackageResources.pubsub_js, contentType: "text/javascript; charset=utf-8")),
    ]

    func register(on router: Router<PubSubRequestContext>) {
        // As the REST API's known paths do: 405, not 404, to any other method.
        router.add(middleware: MethodNotAllowedMiddleware(prefix: "", paths: Self.assets.map { (RouterPath($0.path), [.get]) }))
        for (path, asset) in Self.assets {
            router.get(RouterPath(path)) { request, _ in Self.response(asset, ifNoneMatch: request.headers[values: .ifNoneMatch]) }
        }
    }

    /// 304 when the browser's copy is current. `no-cache` makes it ask each time, so a new
    /// binary's files are picked up at once, for the price of a 304.
    static func response(_ asset: Asset, ifNoneMatch: [String]) -> Response {
        var headers: HTTPFields = [.eTag: asset.etag, .cacheControl: "no-cache"]
        // A weak match is enough for a GET (RFC 9110 13.1.2).
        let tags = ifNoneMatch.flatMap { $0.split(separator: ",") }.map { tag in
            let tag = tag.filter { $0 != " " && $0 != "\t" }
            return tag.hasPrefix("W/") ? String(tag.dropFirst(2)) : String(tag)
        }
        if tags.contains(asset.etag) || tags.contains("*") {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = asset.contentType
        headers[.xContentTypeOptions] = "nosniff"
        headers.append(contentsOf: asset.extraHeaders)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
    }
}
