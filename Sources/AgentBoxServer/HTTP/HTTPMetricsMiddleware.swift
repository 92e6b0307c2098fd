import AgentBox
import CoreMetrics
import Hummingbird
import Synchronization

/// Counts every request by route and status, and times it, into the manager's metrics:
/// `agentbox_http_requests_total{method,route,status}` and `agentbox_http_request_duration_seconds{method,route}`
/// (from the request reaching the router to its response head: a streamed body's own time is not in it). Open
/// event streams are `agentbox_sse_subscribers`.
///
/// Labels stay few whatever clients send: `route` is the template the router matched (`/v1/workspaces/{key}`),
/// never the path, and `unmatched` for a request that matched none; `method` is one of the methods the API uses, else
/// `other`. It goes first, outside the problem middleware, so it sees every answer as the client gets it (a 401 of
/// the auth middleware among them).
struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: AgentBoxMetrics
    let handles: HTTPMetricHandles

    init(metrics: AgentBoxMetrics) {
        self.metrics = metrics
        self.handles = HTTPMetricHandles(factory: metrics.factory)
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let method = HTTPMetricHandles.methodLabel(request.method)
        // The router sets the matched template before the middleware runs; a request that matched none has none
        // (Hummingbird's not-found responder names it later).
        let route = context.endpointPath
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            handles.record(method: method, route: route, status: status.code, elapsed: ContinuousClock.now - started)
            throw error
        }
        handles.record(method: method, route: route, status: response.status.code, elapsed: ContinuousClock.now - started)
        if response.headers[.contentType] == "text/event-stream" {
            // Open for as long as its body is being written.
            let streams = metrics.eventStreams
            let body = response.body
            streams.increment()
            response.body = ResponseBody { writer in
                defer { streams.decrement() }
                try await body.write(writer)
            }
        }
        return response
    }
}

/// The HTTP request counters and timers, made once per label set (a bounded number: routes × methods × statuses).
final class HTTPMetricHandles: Sendable {
    private struct Key: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    private let factory: any MetricsFactory
    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[Key: CoreMetrics.Timer]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// The methods the API serves; any other is labelled `other`.
    static func methodLabel(_ method: HTTPRequest.Method) -> String {
        switch method {
        case .get, .put, .post, .delete, .patch, .head, .options: method.rawValue
        default: "other"
        }
    }

    func record(method: String, route: String?, status: Int, elapsed: Duration) {
        let route = route ?? "unmatched"
        let counter = counters.withLock { counters in
            let key = Key(method: method, route: route, status: status)
            if let counter = counters[key] { return counter }
            let counter = Counter(
                label: "agentbox_http_requests_total", dimensions: [("method", method), ("route", route), ("status", String(status))],
                factory: factory)
            counters[key] = counter
            return counter
        }
        let timer = timers.withLock { timers in
            let key = Key(method: method, route: route, status: 0)
            if let timer = timers[key] { return timer }
            let timer = CoreMetrics.Timer(
                label: "agentbox_http_request_duration_seconds", dimensions: [("method", method), ("route", route)],
                preferredDisplayUnit: .seconds, factory: factory)
            timers[key] = timer
            return timer
        }
        counter.increment()
        timer.record(elapsed: elapsed)
    }
}
