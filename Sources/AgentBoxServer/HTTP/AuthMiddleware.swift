import AgentBox
import AgentBoxAPI
import HTTPTypes
import Hummingbird

/// The one place that decides who may call what: by the route's declared access and scope (see ``APIOperation``),
/// never by the shape of a path.
///
/// A `bearer` or `stream` route takes the server's own token (admin of everything) or an API token
/// (``WorkspaceManager/principal(forToken:)``): unknown, revoked or expired is 401. Then the role decides:
/// - `admin`: everything.
/// - `user`: the routes of the workspaces its patterns match (any method), and the server routes declared
///   `scopedTokens` (listing workspaces, filtered; agents; MCP, scoped). Everything else (tokens, toolkits, images,
///   agent installs, the server's metrics) is 403.
/// - `reader`: as `user`, but only GET (streams included).
/// A route declared `everyRole` (it acts only as the caller) takes any valid token.
/// A token's streams get its revocation signal in the context, so that they end when it is revoked.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = AgentBoxRequestContext
    let token: String
    let registry: APIRouteRegistry
    let manager: WorkspaceManager

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let declaration = registry.declaration(request.method, endpointPath: context.endpointPath)
        let access = declaration?.access ?? .bearer
        switch access {
        case .open, .previewToken, .gatewayKey:
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
            var context = context
            if constantTimeEquals(presented, token) {
                context.principal = .server
            } else if let principal = await manager.principal(
                forToken: presented,
                request: AuthHookRequest(
                    method: request.method.rawValue, path: request.uri.path,
                    workspace: declaration?.scope == .workspace ? (try? WorkspaceController.key(context))?.rawValue : nil))
            {
                context.principal = principal
            } else {
                throw ProblemError(.unauthorized, "wrong bearer token (unknown, revoked or expired)", headers: [.wwwAuthenticate: "Bearer"])
            }
            if let declaration { try Self.authorize(context.principal, declaration, request.method, context) }
            if access == .stream, let id = context.principal.tokenId { context.revocation = await manager.revocations(of: id) }
            return try await next(request, context)
        }
    }

    /// Refuses (403) what the principal's role and patterns do not allow.
    static func authorize(_ principal: AccessPrincipal, _ declaration: APIDeclaration, _ method: HTTPRequest.Method, _ context: Context) throws {
        guard principal.role != .admin, !declaration.everyRole else { return }
        if principal.role == .reader, method != .get, method != .head {
            throw ProblemError(.forbidden, "a reader token may only read (GET)")
        }
        switch declaration.scope {
        case .workspace:
            // A key the route cannot read is its own 400; one it can must be the token's.
            guard let key = try? WorkspaceController.key(context) else { return }
            guard principal.covers(key) else { throw ProblemError(.forbidden, "this token may not use workspace '\(key)'") }
        case .server:
            guard declaration.scopedTokens else { throw ProblemError(.forbidden, "this needs an admin token") }
            if principal.role == .reader, context.endpointPath?.hasPrefix("/v1/mcp") == true {
                throw ProblemError(.forbidden, "a reader token may not use the MCP tools")
            }
        case .preview:
            return
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
