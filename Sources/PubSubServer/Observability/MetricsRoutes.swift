import HTTPTypes
import Hummingbird
import NIOCore
import PubSubCore

/// `GET /metrics` (SPEC 8): the Prometheus exposition. Like `/api/health`, it needs no token
/// with `--auth token`: it names no topic and carries no message (docs/operations.md).
struct MetricsRoutes {
    let state: ServerState

    func register(on router: Router<PubSubRequestContext>) {
        router.add(middleware: MethodNotAllowedMiddleware(prefix: "", paths: [("metrics", [.get])]))
        router.get("metrics") { _, _ in
            let published = (try? await state.broker.publishedCount().get()) ?? 0
            let topicCount = try? await state.broker.topics().get().count
            let exposition = state.metrics.scrape(state: state, topicCount: topicCount, published: published)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: exposition))
            )
        }
    }
}

/// Counts every HTTP request by method, matched route and status
/// (`pubsub_http_requests_total`). Outermost, so it sees the status an error became.
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            count(request, context, response.status.code)
            return response
        } catch {
            count(request, context, ErrorMapping.json(for: error).status.code)
            throw error
        }
    }

    private func count(_ request: Request, _ context: Context, _ status: Int) {
        metrics.countRequest(method: request.method.rawValue, route: context.endpointPath ?? "unmatched", status: status)
    }
}
