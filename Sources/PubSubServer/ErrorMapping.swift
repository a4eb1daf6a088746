import HTTPTypes
import Hummingbird
import NIOCore
import PubSubCore
import PubSubProtocol

/// The one place that maps errors to HTTP statuses and JSON error bodies
/// (the WebSocket side uses the same ``ErrorCode``s in `error` frames).
enum ErrorMapping {
    static func status(for code: ErrorCode) -> HTTPResponse.Status {
        switch code {
        case .badRequest: .badRequest
        case .topicNotFound: .notFound
        case .topicExists: .conflict
        case .messageTooLarge: .contentTooLarge
        case .slowConsumer: .serviceUnavailable
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .rateLimited: .tooManyRequests
        case .internal: .internalServerError
        }
    }

    /// `{"error":"human readable","code":"TOPIC_NOT_FOUND", …context}`
    static func response(_ error: PubSubError, headers: HTTPFields = [:]) -> Response {
        var json = JSONWriter(frame: false)
        json.object { o in
            o.member("error", error.message)
            o.key("code"); o.plainString(error.code.rawValue)
            for (key, value) in error.context.sorted(by: { $0.key < $1.key }) {
                o.key(escaping: key); o.string(value)
            }
        }
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status(for: error.code), headers: fields, body: .init(byteBuffer: json.finish()))
    }

    /// Errors Hummingbird raises itself (unknown path, wrong method, body too large), in our shape.
    /// `NOT_FOUND` and `METHOD_NOT_ALLOWED` are REST-only codes: they name no broker failure.
    static func response(_ error: HTTPError) -> Response {
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
        var fields = error.headers
        fields[.contentType] = "application/json"
        return Response(status: error.status, headers: fields, body: .init(byteBuffer: json.finish()))
    }
}

/// Turns every error a route throws into a JSON response: never a bare 500 for bad input.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as PubSubError {
            return ErrorMapping.response(error)
        } catch let error as HTTPError {
            return ErrorMapping.response(error)
        } catch is NIOTooManyBytesError {
            return ErrorMapping.response(HTTPError(.contentTooLarge))
        } catch {
            context.logger.error("unhandled error", metadata: ["error": "\(error)"])
            return ErrorMapping.response(PubSubError(.internal, "internal error"))
        }
    }
}
