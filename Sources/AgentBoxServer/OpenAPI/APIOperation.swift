import AgentBoxAPI
import HTTPTypes
import Hummingbird

/// One served route, described once: the router registers it and the OpenAPI document lists it from the same
/// value, so the document cannot drift from what is served.
struct APIOperation: Sendable {
    struct Parameter: Sendable {
        enum Location: String, Sendable { case path, query, header }
        var name: String
        var location: Location
        var schema: JSONValue
        var description: String
        var required: Bool
    }

    struct Body: Sendable {
        var contentType: String
        var schema: JSONValue
    }

    struct Reply: Sendable {
        var status: Int
        var description: String
        var body: Body?
    }

    var method: HTTPRequest.Method
    /// OpenAPI form: `/v1/workspaces/{key}`.
    var path: String
    var operationID: String
    var summary: String
    var tag: String
    var parameters: [Parameter] = []
    var requestBody: Body?
    var replies: [Reply]
    /// Who may call it: ``AuthMiddleware`` decides by this, never by the shape of a path or a host.
    var access: APIAccess = .bearer
    /// A route that acts on the server as a whole (no workspace key) is for admin tokens only, unless it says that
    /// scoped tokens may use it too (listing workspaces, filtered to theirs; agents; MCP, scoped to theirs).
    var scopedTokens = false
    /// Any valid token may call it, whatever its role and workspaces: it acts only as the caller (making a login
    /// link for oneself). Implies ``scopedTokens``.
    var everyRole = false

    /// What it acts on: one workspace (named by its `key` path parameter), a preview (its token), or the server. A
    /// token scoped to workspaces is checked against this.
    var scope: APIScope {
        if access == .previewToken { return .preview }
        return parameters.contains { $0.location == .path && $0.name == "key" } ? .workspace : .server
    }

    /// The path in Hummingbird's form: `/v1/workspaces/:key`.
    var routerPath: String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? ":" + segment.dropFirst().dropLast() : segment
        }.joined(separator: "/")
    }
}

/// Who may call an operation. Declared with each route; the one place that decides is ``AuthMiddleware``.
enum APIAccess: Sendable, Equatable {
    /// Anyone (health).
    case open
    /// The bearer token, in the `Authorization` header only.
    case bearer
    /// A stream (SSE or WebSocket), which browsers open without headers: the bearer token, in the header or as
    /// `?access_token=`.
    case stream
    /// A preview: the preview token in its path is the credential, checked by the preview itself.
    case previewToken
    /// The LLM gateway: a workspace's gateway key (`x-api-key` or a bearer token) is the credential, checked by the
    /// gateway, which answers a bad one in the provider's own format.
    case gatewayKey

    /// Its name in the OpenAPI document (`x-agentbox-access`).
    var name: String {
        switch self {
        case .open: "open"
        case .bearer: "bearer"
        case .stream: "stream"
        case .previewToken: "previewToken"
        case .gatewayKey: "gatewayKey"
        }
    }
}

/// What an operation acts on (see ``APIOperation/scope``).
enum APIScope: String, Sendable, Equatable {
    /// The server as a whole (listing workspaces, agents, health).
    case server
    /// The one workspace its `key` path parameter names.
    case workspace
    /// The preview its token names.
    case preview
}

/// A route's declared access and scope, as the registry keeps it.
struct APIDeclaration: Sendable, Equatable {
    var access: APIAccess
    var scope: APIScope
    var scopedTokens = false
    var everyRole = false
}

/// Adds routes to a router and remembers their ``APIOperation``s for the OpenAPI document and their access for
/// ``AuthMiddleware``.
final class APIRouteRegistry: @unchecked Sendable {
    // Written only while the routers are built, before the server starts; read-only afterwards.
    private(set) var operations: [APIOperation] = []
    /// `METHOD /path/{param}` (Hummingbird's endpoint path) → declaration, for HTTP routes and WebSocket upgrades alike.
    private(set) var declarations: [String: APIDeclaration] = [:]
    let router: Router<AgentBoxRequestContext>

    init(router: Router<AgentBoxRequestContext>) {
        self.router = router
    }

    func add(
        _ operation: APIOperation,
        handler: @escaping @Sendable (Request, AgentBoxRequestContext) async throws -> some ResponseGenerator
    ) {
        operations.append(operation)
        declare(operation)
        router.on(RouterPath(operation.routerPath), method: operation.method, use: handler)
    }

    /// Records the access and scope of `operation` for a route registered elsewhere (a WebSocket upgrade).
    func declare(_ operation: APIOperation) {
        declare(
            operation.method, operation.routerPath,
            APIDeclaration(
                access: operation.access, scope: operation.scope, scopedTokens: operation.scopedTokens || operation.everyRole,
                everyRole: operation.everyRole))
    }

    /// Records the access and scope of an undocumented route (the preview proxy's own paths).
    func declare(_ method: HTTPRequest.Method, _ routerPath: String, _ declaration: APIDeclaration) {
        declarations[Self.key(method, RouterPath(routerPath).description)] = declaration
    }

    /// The declared access of the route a request matched (`endpointPath` as Hummingbird reports it); `nil` when it
    /// matched none, which the middleware treats as `.bearer`, so that a request without the token learns nothing.
    func access(_ method: HTTPRequest.Method, endpointPath: String?) -> APIAccess? {
        declaration(method, endpointPath: endpointPath)?.access
    }

    /// The declaration of the route a request matched; `nil` when it matched none.
    func declaration(_ method: HTTPRequest.Method, endpointPath: String?) -> APIDeclaration? {
        endpointPath.flatMap { declarations[Self.key(method, $0)] }
    }

    /// The methods of the routes whose path `path` matches, sorted; empty when it matches none. For a 405's `Allow`:
    /// only on the way to an error (after authentication), so a plain scan.
    func allowedMethods(forPath path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var methods: Set<String> = []
        for key in declarations.keys {
            guard let space = key.firstIndex(of: " ") else { continue }
            let template = key[key.index(after: space)...].split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            if Self.matches(template[...], segments[...]) {
                methods.insert(String(key[..<space]))
            }
        }
        return methods.sorted()
    }

    /// Whether path segments match a route's: `:name`, `{name}` and `*` take one segment, `**` the rest.
    private static func matches(_ template: ArraySlice<Substring>, _ segments: ArraySlice<Substring>) -> Bool {
        guard let first = template.first else { return segments.isEmpty }
        if first == "**" { return true }
        guard let segment = segments.first else { return false }
        let wildcard = first == "*" || first.hasPrefix(":") || (first.hasPrefix("{") && first.hasSuffix("}"))
        guard wildcard ? !segment.isEmpty : first == segment else { return false }
        return matches(template.dropFirst(), segments.dropFirst())
    }

    static func key(_ method: HTTPRequest.Method, _ path: String) -> String { "\(method.rawValue) \(path)" }
}

/// Schema and parameter shorthands for describing operations.
enum Schema {
    static func ref(_ name: String) -> JSONValue { ["$ref": .string("#/components/schemas/\(name)")] }
    static let string: JSONValue = ["type": "string"]
    static let integer: JSONValue = ["type": "integer"]
    static let boolean: JSONValue = ["type": "boolean"]

    static func json(_ schemaName: String) -> APIOperation.Body {
        .init(contentType: "application/json", schema: ref(schemaName))
    }

    static let workspaceKey = APIOperation.Parameter(
        name: "key", location: .path, schema: ref("WorkspaceKey"), description: "The workspace key.", required: true)

    static let problemReplies: [APIOperation.Reply] = [
        .init(status: 400, description: "Bad input", body: .init(contentType: "application/problem+json", schema: ref("Problem"))),
        .init(status: 401, description: "Missing or wrong bearer token", body: .init(contentType: "application/problem+json", schema: ref("Problem"))),
    ]

    static let problem = APIOperation.Body(contentType: "application/problem+json", schema: ref("Problem"))

    static let notFound = APIOperation.Reply(
        status: 404, description: "No such workspace", body: .init(contentType: "application/problem+json", schema: ref("Problem")))
}
