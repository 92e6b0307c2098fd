import Hummingbird

/// Checks the bearer token by the access the matched route declared (``APIAccess``), never by the shape of its
/// path or its host: a route that declared nothing, and a request that matched no route, need the token, so a
/// request without it learns nothing, not even whether a route exists.
///
/// Streams (SSE and WebSocket routes declared `.stream`) also accept `?access_token=`, because browsers'
/// EventSource and WebSocket cannot set headers; no other route does. Tokens are compared in constant time.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String
    let registry: APIRouteRegistry

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let access = registry.access(request.method, endpointPath: context.endpointPath) ?? .bearer
        switch access {
        case .open, .previewToken:
            return try await next(request, context)
        case .bearer, .stream:
            var presented: String?
            if let header = request.headers[.authorization] {
                let parts = header.split(separator: " ", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == "bearer" { presented = String(parts[1]) }
            } else if access == .stream {
                presented = request.uri.queryParameters.get("access_token")
            }
            guard let presented else {
                throw ProblemError(.unauthorized, "missing bearer token", headers: [.wwwAuthenticate: "Bearer"])
            }
            guard constantTimeEquals(presented, token) else {
                throw ProblemError(.unauthorized, "wrong bearer token", headers: [.wwwAuthenticate: "Bearer"])
            }
            return try await next(request, context)
        }
    }
}

/// Compares two strings in time that depends only on their lengths, so a wrong token leaks nothing of the right one.
func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
    let a = Array(lhs.utf8), b = Array(rhs.utf8)
    var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
    for index in 0..<max(a.count, b.count) {
        let x = index < a.count ? a[index] : 0
        let y = index < b.count ? b[index] : 0
        difference |= x ^ y
    }
    return difference == 0 && a.count == b.count
}
