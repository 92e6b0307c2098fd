import AgentBox
import AgentBoxAPI
import Foundation
import Logging
import MCP

/// The MCP sessions of `POST /v1/mcp` (streamable HTTP), bounded in number, in idle time and in requests under way.
///
/// An `initialize` without a session opens one: an SDK `Server` with ``AgentBoxTools`` for the caller's
/// ``WorkspaceScope``, on the SDK's `StatelessHTTPServerTransport`, which answers each POST with the JSON-RPC reply
/// as one JSON body (no SSE: these tools send nothing before their result). Its id, 32 random characters, comes back
/// in `Mcp-Session-Id`; later requests carry it, and only the caller identity that opened a session may use it.
/// `DELETE` ends a session; `GET` (a stream for messages the server starts) answers 405, as the transport allows,
/// since this server starts none.
///
/// Bounds: at most ``Limits/maxSessions`` sessions (a new one displaces the least recently used idle one, else 503);
/// a session idle for ``Limits/idleTimeout`` ends (checked on every request, so an expired id is never served); at
/// most ``Limits/maxRequestsInFlight`` requests under way per session (429 beyond), never two with one id, and none
/// for longer than ``Limits/requestDeadline``.
///
/// The table knows nothing of HTTP frameworks: the server's controller turns its requests into the SDK's
/// `HTTPRequest` (body at most 1 MiB) and the answer back.
public actor MCPHTTPSessions {
    public struct Limits: Sendable {
        public var maxSessions = 64
        public var idleTimeout: Duration = .seconds(600)
        public var maxRequestsInFlight = 16
        /// The longest a request waits for its reply before it is answered with an error: longer than any tool runs
        /// (an `exec` at most 10 minutes), so that only a reply the SDK never sends meets it.
        public var requestDeadline: Duration = .seconds(660)

        public init(
            maxSessions: Int = 64, idleTimeout: Duration = .seconds(600), maxRequestsInFlight: Int = 16, requestDeadline: Duration = .seconds(660)
        ) {
            self.maxSessions = maxSessions
            self.idleTimeout = idleTimeout
            self.maxRequestsInFlight = maxRequestsInFlight
            self.requestDeadline = requestDeadline
        }
    }

    private struct Session {
        let server: Server
        let transport: StatelessHTTPServerTransport
        /// The ``WorkspaceScope/identity`` of the caller that opened it.
        let owner: String
        var lastUsed: ContinuousClock.Instant
        /// HTTP requests being answered (requests and notifications).
        var pending = 0
        /// The JSON-RPC ids of the requests being answered (as the transport matches them → as the client sent them).
        var requestIDs: [String: JSONValue] = [:]
    }

    public let limits: Limits
    private let logger: Logger
    private let makeTools: @Sendable (WorkspaceScope) -> AgentBoxTools
    private var sessions: [String: Session] = [:]
    /// Sessions whose `initialize` is being answered: they count against the limit before they exist.
    private var opening = 0

    /// Sessions whose tools `makeTools` makes for each opener's scope.
    public init(limits: Limits = Limits(), logger: Logger, tools makeTools: @escaping @Sendable (WorkspaceScope) -> AgentBoxTools) {
        self.limits = limits
        self.logger = logger
        self.makeTools = makeTools
    }

    /// The number of open sessions.
    public var count: Int { sessions.count }

    /// Answers one HTTP request to the MCP endpoint from a caller with `scope`.
    public func handle(_ request: HTTPRequest, scope: WorkspaceScope) async -> HTTPResponse {
        await expireIdleSessions()
        switch request.method.uppercased() {
        case "POST":
            let response = await post(request, scope: scope)
            logger.debug(
                "MCP request answered",
                metadata: [
                    "mcp.method": "\(request.body.flatMap(IncomingMessage.init)?.method ?? "-")", "http.status": "\(response.statusCode)",
                    "mcp.session": "\(request.header(HTTPHeaderName.sessionID) ?? "-")",
                ])
            return response
        case "DELETE":
            return await delete(request, scope: scope)
        default:
            return .error(
                statusCode: 405, .invalidRequest("Method Not Allowed: this server starts no messages of its own, so it has no GET stream"),
                extraHeaders: [HTTPHeaderName.allow: "POST, DELETE"])
        }
    }

    // MARK: Requests

    private func post(_ request: HTTPRequest, scope: WorkspaceScope) async -> HTTPResponse {
        let message = request.body.flatMap(IncomingMessage.init)
        guard let id = request.header(HTTPHeaderName.sessionID) else {
            guard let message else { return .error(statusCode: 400, .parseError("the body is not a JSON-RPC message")) }
            guard message.isInitialize else {
                return .error(statusCode: 400, .invalidRequest("Bad Request: no \(HTTPHeaderName.sessionID) header; send initialize first"))
            }
            return await open(request, scope: scope)
        }
        guard var session = sessions[id], session.owner == scope.identity else { return Self.unknownSession(id) }
        if let requestID = message?.requestID, session.requestIDs[requestID] != nil {
            return .error(statusCode: 409, .invalidRequest("Conflict: a request with id \(requestID) is under way in this session"), sessionID: id)
        }
        // Requests count, notifications do not: a `notifications/cancelled` must get through to a full session.
        guard message?.requestID == nil || session.requestIDs.count < limits.maxRequestsInFlight else {
            return .error(
                statusCode: 429, .invalidRequest("Too Many Requests: \(limits.maxRequestsInFlight) requests are under way in this session"),
                sessionID: id)
        }
        session.pending += 1
        if let message, let requestID = message.requestID, let rawID = message.rawID { session.requestIDs[requestID] = rawID }
        sessions[id] = session
        let transport = session.transport
        // The transport waits for the server's reply without end; the SDK sends none for a request whose handler was
        // cancelled before it started. A deadline answers such a request, so that none is under way for ever.
        let deadline = message?.rawID.map { rawID in
            Task { [limits] in
                try await Task.sleep(for: limits.requestDeadline)
                try await transport.send(Self.errorReply(to: rawID, code: -32001, "the request got no reply in \(limits.requestDeadline)"))
            }
        }
        let response = await transport.handleRequest(request)
        deadline?.cancel()
        guard var current = sessions[id] else {
            // Ended (DELETE) while the request was under way: the transport's answer is a 500 "connection closed".
            return Self.unknownSession(id)
        }
        current.pending -= 1
        if let requestID = message?.requestID { current.requestIDs[requestID] = nil }
        current.lastUsed = .now
        sessions[id] = current
        // A cancelled request gets no reply from the SDK (as the specification has it), but its POST waits for one:
        // it is answered here. Should the tool's own result come after all, the transport drops it.
        if let cancelled = message?.cancelledRequestID, let rawID = current.requestIDs[cancelled] {
            try? await transport.send(Self.errorReply(to: rawID, code: -32800, "the request was cancelled"))
        }
        return response.adding(sessionID: id)
    }

    /// A JSON-RPC error reply to the request with `id`.
    static func errorReply(to id: JSONValue, code: Int, _ message: String) -> Data {
        let reply: JSONValue = ["jsonrpc": "2.0", "id": id, "error": ["code": .number(Double(code)), "message": .string(message)]]
        return Data(reply.jsonBytes)
    }

    private func open(_ request: HTTPRequest, scope: WorkspaceScope) async -> HTTPResponse {
        if sessions.count + opening >= limits.maxSessions {
            // The least recently used session with nothing under way makes room; its client is told 404 next time
            // and initializes again, as the transport's specification has it.
            guard let id = sessions.filter({ $0.value.pending == 0 }).min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key else {
                return .error(
                    statusCode: 503, .invalidRequest("Service Unavailable: \(limits.maxSessions) MCP sessions are busy; try again later"),
                    extraHeaders: ["Retry-After": "1"])
            }
            logger.info("MCP session displaced by a new one", metadata: ["mcp.session": "\(id)"])
            await end(id)
        }
        opening += 1
        defer { opening -= 1 }
        let transport = StatelessHTTPServerTransport(validationPipeline: Self.validation, logger: logger)
        let server: Server
        do {
            server = try await AgentBoxMCPServer.start(tools: makeTools(scope), transport: transport, logger: logger)
        } catch {
            logger.error("MCP session could not start", metadata: ["error": "\(error)"])
            return .error(statusCode: 503, .internalError("Service Unavailable: the MCP session could not start"))
        }
        let response = await transport.handleRequest(request)
        // Only a successful initialize opens a session; a refused or malformed one leaves nothing behind.
        guard response.statusCode == 200, let body = response.bodyData, case .object(let reply)? = try? JSONValue.parse(body), reply["result"] != nil
        else {
            await server.stop()
            return response
        }
        let id = RandomID.make(prefix: "mcp_", length: 32)
        sessions[id] = Session(server: server, transport: transport, owner: scope.identity, lastUsed: .now)
        logger.debug("MCP session opened", metadata: ["mcp.session": "\(id)", "mcp.sessions": "\(sessions.count)"])
        return response.adding(sessionID: id)
    }

    private func delete(_ request: HTTPRequest, scope: WorkspaceScope) async -> HTTPResponse {
        guard let id = request.header(HTTPHeaderName.sessionID) else {
            return .error(statusCode: 400, .invalidRequest("Bad Request: no \(HTTPHeaderName.sessionID) header"))
        }
        guard let session = sessions[id], session.owner == scope.identity else { return Self.unknownSession(id) }
        await end(id)
        return .ok(headers: [HTTPHeaderName.sessionID: id])
    }

    // MARK: Ending

    private func end(_ id: String) async {
        guard let session = sessions.removeValue(forKey: id) else { return }
        await session.server.stop()
    }

    private func expireIdleSessions() async {
        let now = ContinuousClock.now
        let expired = sessions.filter { $0.value.pending == 0 && now - $0.value.lastUsed > limits.idleTimeout }.keys
        for id in expired {
            logger.debug("MCP session expired", metadata: ["mcp.session": "\(id)"])
            await end(id)
        }
    }

    private static func unknownSession(_ id: String) -> HTTPResponse {
        .error(statusCode: 404, .invalidRequest("Not Found: no MCP session with this id (it ended or expired); initialize again"))
    }

    /// What every request must be, checked by the transport before the server sees it.
    static let validation: any HTTPRequestValidationPipeline = StandardValidationPipeline(validators: [
        LoopbackOriginValidator(),
        AcceptHeaderValidator(mode: .jsonOnly),
        ContentTypeValidator(),
        ProtocolVersionValidator(),
    ])
}

/// The parts of an incoming JSON-RPC message the session table needs: whether it is an `initialize` request, and its
/// id (as the SDK's transport matches ids: `1` and `"1"` alike).
struct IncomingMessage {
    let method: String?
    /// The id of a request, as the transport matches it, and as it came.
    let requestID: String?
    let rawID: JSONValue?
    /// The request a `notifications/cancelled` cancels.
    let cancelledRequestID: String?

    init?(_ body: Data) {
        guard case .object(let fields)? = try? JSONValue.parse(body) else { return nil }
        method = fields["method"]?.stringValue
        requestID = method == nil ? nil : fields["id"].flatMap(Self.matchingKey)
        rawID = requestID == nil ? nil : fields["id"]
        cancelledRequestID = method == "notifications/cancelled" ? fields["params"]?["requestId"].flatMap(Self.matchingKey) : nil
    }

    var isInitialize: Bool { method == "initialize" && requestID != nil }

    /// An id as the SDK's transport keys it (`1` and `"1"` alike); `nil` for what it does not take as an id.
    private static func matchingKey(_ id: JSONValue) -> String? {
        switch id {
        case .string(let text): text
        case .number(let number) where number.rounded() == number && abs(number) < 1e15: String(Int64(number))
        default: nil
        }
    }
}

/// Refuses requests from web pages other than the loopback's own: the MCP specification's defence against DNS
/// rebinding, where a page on an attacker's name that resolves to 127.0.0.1 posts to a local server. Clients that
/// are not browsers send no `Origin` and pass.
struct LoopbackOriginValidator: HTTPRequestValidator {
    func validate(_ request: HTTPRequest, context: HTTPValidationContext) -> HTTPResponse? {
        guard let origin = request.header(HTTPHeaderName.origin) else { return nil }
        let host = URLComponents(string: origin)?.host?.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased() ?? ""
        if host == "localhost" || host == "::1" || (host.hasPrefix("127.") && host.split(separator: ".").count == 4) { return nil }
        return .error(statusCode: 403, .invalidRequest("Forbidden: Origin \(origin) is not allowed"), sessionID: context.sessionID)
    }
}

extension HTTPResponse {
    /// The same answer with `Mcp-Session-Id: id`.
    func adding(sessionID id: String) -> HTTPResponse {
        let header = [HTTPHeaderName.sessionID: id]
        switch self {
        case .accepted(let headers): return .accepted(headers: headers.merging(header) { $1 })
        case .ok(let headers): return .ok(headers: headers.merging(header) { $1 })
        case .data(let data, let headers): return .data(data, headers: headers.merging(header) { $1 })
        case .stream(let stream, let headers): return .stream(stream, headers: headers.merging(header) { $1 })
        case .error(let status, let error, _, let extra): return .error(statusCode: status, error, sessionID: id, extraHeaders: extra)
        }
    }
}
