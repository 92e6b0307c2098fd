import Hummingbird

/// Checks the bearer token on every route but `GET /v1/health` and the preview routes.
///
/// Streaming routes (SSE and WebSocket) also accept `?access_token=`, because browsers' EventSource and WebSocket
/// cannot set headers. Tokens are compared in constant time.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String
    /// Requests for `{token}.{previewDomain}` are previews (the WebSocket router's upgrades pass through here).
    var previewDomain: String? = nil

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if !Self.requiresAuth(path: path) { return try await next(request, context) }
        if let previewDomain, PreviewController.hostToken(request, domain: previewDomain) != nil { return try await next(request, context) }
        var presented: String?
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { presented = String(parts[1]) }
        } else if Self.acceptsQueryToken(path: path) {
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

    static func requiresAuth(path: String) -> Bool {
        if path == "/v1/health" || path.hasPrefix("/preview/") { return false }
        return true
    }

    /// SSE and WebSocket routes, where `?access_token=` stands in for the header.
    static func acceptsQueryToken(path: String) -> Bool {
        path.hasSuffix("/events") || path.hasSuffix("/events/stream") || path.hasSuffix("/ws")
            || path.hasSuffix("/output") || path.hasSuffix("/fs/watch")
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
