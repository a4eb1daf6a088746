import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import PubSubCore
import PubSubProtocol

/// The one place that maps errors to HTTP statuses and JSON error bodies
/// (the WebSocket side uses the same ``ErrorCode``s in `error` frames).
enum ErrorMapping {
    /// Limits on connections answer 503 (come back later); limits on what the server stores, 507.
    static let connectionLimits: Set<String> = ["max_connections", "max_connections_per_ip"]

    static func status(for error: PubSubError) -> HTTPResponse.Status {
        switch error.code {
        case .badRequest: .badRequest
        case .topicNotFound: .notFound
        case .topicExists: .conflict
        case .messageTooLarge: .contentTooLarge
        case .slowConsumer: .serviceUnavailable
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .rateLimited: .tooManyRequests
        case .limitExceeded: connectionLimits.contains(error.context["limit"] ?? "") ? .serviceUnavailable : HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")
        case .unavailable: .serviceUnavailable
        case .internal: .internalServerError
        }
    }

    /// Headers an error's response carries besides its JSON: `Retry-After` when rate limited,
    /// `WWW-Authenticate` when a credential is missing or bad.
    static func headers(for error: PubSubError) -> HTTPFields {
        var fields: HTTPFields = [.contentType: "application/json"]
        if error.code == .rateLimited, let seconds = error.context["retry_after"] { fields[.retryAfter] = seconds }
        if error.code == .unauthorized { fields[.wwwAuthenticate] = "Bearer" }
        return fields
    }

    /// The status, headers and JSON body for any error: a ``PubSubError``, an `HTTPError`
    /// Hummingbird raises itself (unknown path, wrong method, body too large), or anything else
    /// (500 `INTERNAL`, with no detail).
    static func json(for error: any Error) -> (status: HTTPResponse.Status, headers: HTTPFields, body: ByteBuffer) {
        switch error {
        case let error as PubSubError:
            return (status(for: error), headers(for: error), body(error))
        case let error as HTTPError:
            var fields = error.headers
            fields[.contentType] = "application/json"
            return (error.status, fields, body(error))
        case is NIOTooManyBytesError:
            return json(for: HTTPError(.contentTooLarge))
        case let error as HTTPParserError:
            return json(for: HTTPError(.badRequest, message: "malformed HTTP request: \(error)"))
        default:
            return json(for: PubSubError(.internal, "internal error"))
        }
    }

    static func response(_ error: any Error) -> Response {
        let (status, headers, body) = json(for: error)
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }

    /// `{"error":"human readable","code":"TOPIC_NOT_FOUND", …context}`
    private static func body(_ error: PubSubError) -> ByteBuffer {
        var json = JSONWriter(frame: false)
        json.object { o in
            o.member("error", error.message)
            o.key("code"); o.plainString(error.code.rawValue)
            for (key, value) in error.context.sorted(by: { $0.key < $1.key }) {
                o.key(escaping: key); o.string(value)
            }
        }
        return json.finish()
    }

    /// `NOT_FOUND` and `METHOD_NOT_ALLOWED` are REST-only codes: they name no broker failure.
    private static func body(_ error: HTTPError) -> ByteBuffer {
        let code: String
        let message: String
        switch error.status {
        case .notFound: (code, message) = ("NOT_FOUND", "no such endpoint")
        case .methodNotAllowed: (code, message) = ("METHOD_NOT_ALLOWED", "method not allowed here; see the Allow header")
        case .contentTooLarge: (code, message) = (ErrorCode.messageTooLarge.rawValue, "request body is too large")
        default:
            code = (error.status.code >= 500 ? ErrorCode.internal : ErrorCode.badRequest).rawValue
            message = error.body ?? error.status.reasonPhrase
        }
        var json = JSONWriter(frame: false)
        json.object { o in
            o.member("error", message)
            o.member("code", code)
        }
        return json.finish()
    }
}

/// Turns every error a route throws into a JSON response: never a bare 500 for bad input.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            if !(error is PubSubError || error is HTTPError || error is NIOTooManyBytesError || error is HTTPParserError) {
                context.logger.error("unhandled error", metadata: ["error": "\(error)"])
            }
            return ErrorMapping.response(error)
        }
    }
}
