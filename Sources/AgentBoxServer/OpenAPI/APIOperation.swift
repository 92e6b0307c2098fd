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
}

/// Adds routes to a router and remembers their ``APIOperation``s for the OpenAPI document and their access for
/// ``AuthMiddleware``.
final class APIRouteRegistry: @unchecked Sendable {
    // Written only while the routers are built, before the server starts; read-only afterwards.
    private(set) var operations: [APIOperation] = []
    /// `METHOD /path/{param}` (Hummingbird's endpoint path) → access, for HTTP routes and WebSocket upgrades alike.
    private var access: [String: APIAccess] = [:]
    let router: Router<AgentBoxRequestContext>

    init(router: Router<AgentBoxRequestContext>) {
        self.router = router
    }

    func add(
        _ operation: APIOperation,
        handler: @escaping @Sendable (Request, AgentBoxRequestContext) async throws -> some ResponseGenerator
    ) {
        operations.append(operation)
        declare(operation.method, operation.routerPath, operation.access)
        router.on(RouterPath(operation.routerPath), method: operation.method, use: handler)
    }

    /// Records the access of a route registered elsewhere (a WebSocket upgrade, an undocumented route).
    func declare(_ method: HTTPRequest.Method, _ routerPath: String, _ access: APIAccess) {
        self.access[Self.key(method, RouterPath(routerPath).description)] = access
    }

    /// The declared access of the route a request matched (`endpointPath` as Hummingbird reports it); `nil` when it
    /// matched none, which the middleware treats as `.bearer`, so that a request without the token learns nothing.
    func access(_ method: HTTPRequest.Method, endpointPath: String?) -> APIAccess? {
        endpointPath.flatMap { access[Self.key(method, $0)] }
    }

    private static func key(_ method: HTTPRequest.Method, _ path: String) -> String { "\(method.rawValue) \(path)" }
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
