import HTTPTypes
import Hummingbird

/// Turns the router's 404 for a path that exists, asked with a method it does not take, into a 405 with `Allow`
/// (RFC 9110 §15.5.6), so that `DELETE /v1/health` says "use GET" rather than "no such route".
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = AgentBoxRequestContext
    let registry: APIRouteRegistry

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && context.endpointPath == "NotFound" {
            // Only the router's own "no such route" (a route's 404 for a missing workspace is a ProblemError).
            let allowed = registry.allowedMethods(forPath: request.uri.path)
            guard !allowed.isEmpty else { throw error }
            throw ProblemError(
                .methodNotAllowed, "\(request.method.rawValue) is not allowed on \(request.uri.path.prefix(200)); allowed: \(allowed.joined(separator: ", "))",
                headers: [.allow: allowed.joined(separator: ", ")])
        }
    }
}
