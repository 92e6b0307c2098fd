import AgentBox
import AgentBoxAPI
import AgentBoxE2B
import AgentBoxMCP
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// How the HTTP server listens and authenticates.
public struct ServerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (reported through `onListening`).
    public var port: Int
    /// The bearer token every /v1 route but health requires; `nil` for none.
    public var token: String?
    /// Allows listening on a non-loopback address without a token.
    public var allowUnauthenticatedRemote: Bool
    /// With a domain `D`, `{token}.D` serves the preview `token` at the root of its own host (point a wildcard DNS
    /// record at this server). `nil` for path-based previews only.
    public var previewDomain: String?
    /// Origins whose pages may call the API from a browser (`Access-Control-Allow-Origin`); none by default.
    public var corsOrigins: [String]
    /// The Inspector's files (`/ui/`), served live from this folder; `nil`: the ones installed beside the binary.
    public var uiDirectory: String?
    /// How long a client may take to send a request head (from the connection's start or the last answer's end: also
    /// how long an idle keep-alive connection stays open), and to send more of a request body; then its connection
    /// closes. No clock runs while the server is answering.
    public var clientHeadTimeout: Duration = .seconds(60)
    public var clientBodyTimeout: Duration = .seconds(60)

    public init(
        host: String = "127.0.0.1", port: Int = 2468, token: String? = nil, allowUnauthenticatedRemote: Bool = false, previewDomain: String? = nil,
        corsOrigins: [String] = [], uiDirectory: String? = nil
    ) {
        self.uiDirectory = uiDirectory
        self.corsOrigins = corsOrigins
        self.previewDomain = previewDomain?.lowercased()
        self.host = host
        self.port = port
        self.token = token
        self.allowUnauthenticatedRemote = allowUnauthenticatedRemote
    }

    /// Refuses a configuration that would expose workspaces to the network without a token.
    public func validate() throws {
        if let previewDomain {
            let labels = previewDomain.split(separator: ".", omittingEmptySubsequences: false)
            guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } }) else {
                throw AgentBoxError(.invalidArgument, "--preview-domain must be a domain such as preview.example.com, not '\(previewDomain)'")
            }
        }
        if let token, token.isEmpty { throw AgentBoxError(.invalidArgument, "--token must not be empty") }
        for origin in corsOrigins where !OriginCORSMiddleware<AgentBoxRequestContext>.isOrigin(origin) {
            throw AgentBoxError(.invalidArgument, "--cors-origin must be an origin such as https://app.example.com (no path), not '\(origin)'")
        }
        if let uiDirectory, !FileManager.default.fileExists(atPath: URL(fileURLWithPath: uiDirectory).appendingPathComponent("index.html").path) {
            throw AgentBoxError(.invalidArgument, "--ui-dir must be a folder with the Inspector's index.html, not '\(uiDirectory)'")
        }
        if token == nil, !allowUnauthenticatedRemote, !Self.isLoopback(host) {
            throw AgentBoxError(
                .invalidArgument,
                "refusing to listen on \(host) without a token: pass --token T, or --no-token to allow anyone who can reach it")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }
}

/// The routers of the AgentBox HTTP API over `manager`: one for HTTP requests, one for WebSocket upgrades.
public func buildRouters(
    manager: WorkspaceManager, token: String?, previewDomain: String? = nil, corsOrigins: [String] = [], uiDirectory: String? = nil
) -> (http: Router<AgentBoxRequestContext>, webSocket: Router<AgentBoxRequestContext>) {
    let api = buildAPI(manager: manager, token: token, previewDomain: previewDomain, corsOrigins: corsOrigins, uiDirectory: uiDirectory)
    return (api.http, api.webSocket)
}

/// The routers and the registry of every route's declaration (access, scope, documentation).
func buildAPI(
    manager: WorkspaceManager, token: String?, previewDomain: String? = nil, corsOrigins: [String] = [], uiDirectory: String? = nil
) -> (http: Router<AgentBoxRequestContext>, webSocket: Router<AgentBoxRequestContext>, registry: APIRouteRegistry) {
    // No HEAD made from each GET (Hummingbird's autoGenerateHeadEndpoints): it runs the GET's handler and drops the
    // body unread, which leaked a file's descriptor (fs/file), left a tar blocked (fs/archive) and an SSE gauge up.
    let router = Router(context: AgentBoxRequestContext.self)
    let webSocketRouter = Router(context: AgentBoxRequestContext.self)
    let registry = APIRouteRegistry(router: router)
    // Middleware wraps only the routes added after it, so it goes first. Each route declares its access when it is
    // added to the registry, which the middleware consults once the server serves. Metrics come first of all: they
    // see each answer as the client gets it.
    router.add(middleware: HTTPMetricsMiddleware(metrics: manager.metrics))
    // Browsers' preflights carry no token: they are answered (for listed origins only) before authentication.
    if !corsOrigins.isEmpty { router.add(middleware: OriginCORSMiddleware(origins: Set(corsOrigins))) }
    for each in [router, webSocketRouter] {
        each.add(middleware: ProblemMiddleware())
        if let token { each.add(middleware: AuthMiddleware(token: token, registry: registry, manager: manager)) }
    }
    // A known path asked with another method is a 405 naming the allowed ones (after authentication: a request
    // without the token learns nothing of the routes).
    router.add(middleware: MethodNotAllowedMiddleware(registry: registry))
    // In a cluster, requests for workspaces that another node serves go there (after authentication here).
    if let cluster = manager.cluster { router.add(middleware: ClusterForwardingMiddleware(cluster: cluster, registry: registry)) }
    HealthController().addRoutes(to: registry)
    ClusterController(manager: manager).addRoutes(to: registry)
    AccessController(manager: manager).addRoutes(to: registry)
    MetricsController(manager: manager).addRoutes(to: registry)
    WorkspaceController(manager: manager).addRoutes(to: registry)
    ProcessController(manager: manager).addRoutes(to: registry)
    FileController(manager: manager).addRoutes(to: registry)
    SnapshotController(manager: manager).addRoutes(to: registry)
    ImageController(manager: manager).addRoutes(to: registry)
    CronController(manager: manager).addRoutes(to: registry)
    ToolkitController(manager: manager).addRoutes(to: registry)
    LLMGatewayController(manager: manager).addRoutes(to: registry)
    NetworkController(manager: manager).addRoutes(to: registry)
    PreviewController(manager: manager, previewDomain: previewDomain).addRoutes(to: registry, router: router, webSocketRouter: webSocketRouter)
    ShellController(manager: manager).addRoutes(to: registry, webSocketRouter: webSocketRouter)
    DesktopController(manager: manager).addRoutes(to: registry, webSocketRouter: webSocketRouter)
    SessionController(manager: manager).addRoutes(to: registry)
    AgentController(manager: manager).addRoutes(to: registry)
    ACPController(manager: manager).addRoutes(to: registry)
    MCPController(sessions: MCPHTTPSessions(logger: manager.logger) { scope in AgentBoxTools(operations: manager, scope: scope) })
        .addRoutes(to: registry)
    InspectorController(root: InspectorController.locate(explicit: uiDirectory)).addRoutes(to: registry)
    return (router, webSocketRouter, registry)
}

/// The HTTP router of the AgentBox API over `manager` (WebSocket routes answer plain requests with 426).
public func buildRouter(manager: WorkspaceManager, token: String?) -> Router<AgentBoxRequestContext> {
    buildRouters(manager: manager, token: token).http
}

/// The HTTP application serving `manager`. `onListening` receives the bound port once the server listens.
public func buildApplication(
    manager: WorkspaceManager, configuration: ServerConfiguration, logger: Logger,
    onListening: @escaping @Sendable (Int) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    try configuration.validate()
    let (router, webSocketRouter) = buildRouters(
        manager: manager, token: configuration.token, previewDomain: configuration.previewDomain, corsOrigins: configuration.corsOrigins,
        uiDirectory: configuration.uiDirectory)
    let webSocketResponder = webSocketRouter.buildResponder()
    let previewDomain = configuration.previewDomain
    // E2B's API answers at the root path, before the routes and their Bearer authentication (it has its own).
    let e2b = E2BService(manager: manager, serverToken: configuration.token)
    return Application(
        responder: E2BDispatchingResponder(e2b: e2b, routes: router.buildResponder()),
        server: HTTPServerBuilder { responder in
            // Hummingbird's HTTP/1 channel with WebSocket upgrades (as `.http1WebSocketUpgrade(webSocketRouter:)`
            // builds it), guarded against a malformed first request.
            GuardedChildChannel(
                inner: HTTP1WebSocketUpgradeChannel(
                    responder: responder,
                    webSocketResponder: webSocketResponder,
                    configuration: .init(
                        http1: .init(additionalChannelHandlers: [
                            ExpectContinueHandler(),
                            PreviewProxyInstaller(PreviewProxyHandler(manager: manager, previewDomain: previewDomain, serverToken: configuration.token, logger: logger)),
                        ]),
                        ws: .init(maxFrameSize: ShellController.maxFrameSize))),
                previewDomain: previewDomain, relaysWebSockets: manager.cluster == nil,
                clientTimeouts: (configuration.clientHeadTimeout, configuration.clientBodyTimeout))
        },
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "agentbox"),
        onServerRunning: { channel in
            await onListening(channel.localAddress?.port ?? configuration.port)
        },
        logger: logger)
}

/// Runs AgentBox until SIGTERM or SIGINT, then shuts down gracefully: stop accepting requests and end event
/// streams, put every workspace to sleep, close the store.
public func runServer(
    manager: WorkspaceManager, configuration: ServerConfiguration, logger: Logger,
    onListening: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws {
    let app = try buildApplication(manager: manager, configuration: configuration, logger: logger, onListening: onListening)
    // Services stop in reverse order: first the event streams end (so the server can drain), then the server,
    // then the workspaces and the store.
    var group = ServiceGroupConfiguration(
        services: [
            WorkspaceManagerService(manager: manager), app, EventStreamCloser(manager: manager),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger)
    // A stop never hangs: what has not finished gracefully by then is cancelled, and the process exits within 10 s
    // (sandboxes end with it: their supervisors exit when the server's end of their control socket closes).
    group.maximumGracefulShutdownDuration = .seconds(8)
    group.maximumCancellationDuration = .seconds(1)
    try await ServiceGroup(configuration: group).run()
}

/// Hands E2B's requests (``E2BService/handles(_:)``) to the E2B service and every other request to AgentBox's routes.
struct E2BDispatchingResponder<Routes: HTTPResponder>: HTTPResponder where Routes.Context == AgentBoxRequestContext {
    let e2b: E2BService
    let routes: Routes

    func respond(to request: Request, context: AgentBoxRequestContext) async throws -> Response {
        if let response = await e2b.respond(to: request) { return response }
        return try await routes.respond(to: request, context: context)
    }
}
