import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOWebSocket

/// The shell routes: open, list, get, input, resize, close, and the WebSocket that carries a terminal's bytes.
///
/// Several clients may attach to one shell at once; each sees all of its output (multiplayer). A client that
/// detaches leaves the shell running; `DELETE` ends it.
struct ShellController {
    let manager: WorkspaceManager
    /// The largest WebSocket frame accepted; a bigger one closes that connection (1009), never the shell.
    static let maxFrameSize = 1 << 20

    func addRoutes(to registry: APIRouteRegistry, webSocketRouter: Router<AgentBoxRequestContext>) {
        let manager = manager
        let shellID = APIOperation.Parameter(
            name: "id", location: .path, schema: ["type": "string", "pattern": "^shell_[a-z0-9]{16}$"], description: "The shell id.", required: true)
        let notFound = APIOperation.Reply(status: 404, description: "No such workspace or shell", body: Schema.problem)
        let exited = APIOperation.Reply(status: 409, description: "The shell has exited", body: Schema.problem)
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/shells", operationID: "openShell",
                summary: "Open a shell on a new terminal of the workspace (boots it; an open shell holds it awake)", tag: "shells",
                parameters: [Schema.workspaceKey], requestBody: Schema.json("ShellCreateRequest"),
                replies: [.init(status: 201, description: "Opened", body: Schema.json("Shell")), notFound] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: ShellCreateRequest.self, context: context)
            let shell = try await Self.runtime(manager, context).openShell(body)
            return EditedResponse(status: .created, response: shell)
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/shells", operationID: "listShells",
                summary: "The open shells and the most recently exited ones (never boots)", tag: "shells", parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The shells", body: Schema.json("ShellList")), notFound] + Schema.problemReplies)
        ) { _, context in
            try await Self.runtime(manager, context).shellList()
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/shells/{id}", operationID: "getShell", summary: "A shell (never boots)",
                tag: "shells", parameters: [Schema.workspaceKey, shellID],
                replies: [.init(status: 200, description: "The shell", body: Schema.json("Shell")), notFound] + Schema.problemReplies)
        ) { _, context in
            try await Self.session(manager, context).info
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/shells/{id}/input", operationID: "writeShellInput",
                summary: "Write raw bytes to the shell's terminal (keystrokes; \\u0003 is Ctrl-C)", tag: "shells",
                parameters: [Schema.workspaceKey, shellID],
                requestBody: .init(contentType: "application/octet-stream", schema: ["type": "string", "format": "binary"]),
                replies: [.init(status: 204, description: "Queued for the terminal"), exited, notFound] + Schema.problemReplies)
        ) { request, context in
            let session = try await Self.session(manager, context)
            try session.write(try await request.body.collect(upTo: Self.maxFrameSize))
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/shells/{id}/resize", operationID: "resizeShell",
                summary: "Set the terminal's size; the foreground job gets SIGWINCH", tag: "shells",
                parameters: [Schema.workspaceKey, shellID], requestBody: Schema.json("ShellResize"),
                replies: [.init(status: 204, description: "Resized"), exited, notFound] + Schema.problemReplies)
        ) { request, context in
            let size = try await request.decode(as: ShellResize.self, context: context)
            try await Self.session(manager, context).resize(size)
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/workspaces/{key}/shells/{id}", operationID: "closeShell",
                summary: "Close the shell: kill its process group and everything it started", tag: "shells",
                parameters: [Schema.workspaceKey, shellID], replies: [.init(status: 204, description: "Closed"), notFound] + Schema.problemReplies)
        ) { _, context in
            try await Self.runtime(manager, context).closeShell(try Self.shellID(context))
            return HTTPResponse.Status.noContent
        }
        let webSocket = APIOperation(
            method: .get, path: "/v1/workspaces/{key}/shells/{id}/ws", operationID: "attachShell",
            summary: "WebSocket: binary frames carry terminal bytes both ways; text frame {\"type\":\"resize\",\"cols\",\"rows\"} resizes; the server sends {\"type\":\"exit\",\"exitCode\"} then closes",
            tag: "shells",
            parameters: [
                Schema.workspaceKey, shellID,
            ],
            replies: [
                .init(status: 101, description: "Switching to the WebSocket protocol"),
                .init(status: 426, description: "Not a WebSocket upgrade request", body: Schema.problem), notFound,
            ] + Schema.problemReplies, access: .stream)
        // A plain GET (no upgrade) reaches the HTTP router: say what the route wants, after checking what it names.
        registry.add(webSocket) { _, context -> Response in
            _ = try await Self.session(manager, context)
            throw ProblemError(HTTPResponse.Status(code: 426, reasonPhrase: "Upgrade Required"), "this route takes a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)")
        }
        registry.declare(webSocket)
        webSocketRouter.ws(RouterPath(webSocket.routerPath)) { request, context in
            // In a cluster, a shell of a workspace another node serves is relayed there.
            if try await ClusterWebSocketForwarder.remoteOwner(manager, WorkspaceController.key(context), request: request) != nil {
                return .upgrade([:])
            }
            _ = try await Self.session(manager, context)
            return .upgrade([:])
        } onUpgrade: { inbound, outbound, context in
            if let cluster = manager.cluster,
                let node = try await ClusterWebSocketForwarder.remoteOwner(manager, WorkspaceController.key(context.requestContext), request: context.request)
            {
                try await ClusterWebSocketForwarder.relay(
                    to: node, cluster: cluster, request: context.request, context: context.requestContext, inbound: inbound, outbound: outbound)
                return
            }
            let session = try await Self.session(manager, context.requestContext)
            // A reader watches: its input and resize frames are refused, as its POSTs to input and resize are.
            try await Self.relay(
                session, inbound: inbound, outbound: outbound, readOnly: context.requestContext.principal.role == .reader,
                until: context.requestContext.revocation)
        }
    }

    /// Carries one client's side of a shell until the shell exits (then `exit` and a close) or the client leaves
    /// (the shell stays). Bad text frames are answered with an `error` text frame and otherwise ignored; so is every
    /// frame of a `readOnly` client (a reader token's), which only sees the output.
    /// `until`: the connection closes when it ends (the request's token was revoked).
    static func relay(
        _ session: ShellSession, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, readOnly: Bool = false,
        until revocation: AsyncStream<Never>? = nil
    ) async throws {
        let output = session.attach()
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let revocation {
                group.addTask {
                    for await _ in revocation {}
                    try await outbound.close(.policyViolation, reason: "token revoked")
                }
            }
            group.addTask {
                for await item in output {
                    switch item {
                    case .data(let bytes): try await outbound.write(.binary(bytes))
                    case .exit(let code):
                        let message = ShellControlMessage(type: .exit, exitCode: code)
                        try await outbound.write(.text(String(decoding: try AgentBoxJSON.makeEncoder().encode(message), as: UTF8.self)))
                    }
                }
                // The shell exited, or this client fell too far behind: either way this connection is done.
                try await outbound.close(.normalClosure, reason: nil)
            }
            group.addTask {
                let decoder = AgentBoxJSON.makeDecoder()
                for try await message in inbound.messages(maxSize: maxFrameSize) {
                    if readOnly {
                        try await outbound.write(.text(#"{"type":"error","message":"a reader token may only watch this shell: its input and resizes are refused"}"#))
                        continue
                    }
                    switch message {
                    case .binary(let bytes):
                        try? session.write(bytes)
                    case .text(let text):
                        do {
                            let control = try decoder.decode(ShellControlMessage.self, from: Data(text.utf8))
                            guard control.type == .resize, let cols = control.cols, let rows = control.rows else {
                                throw AgentBoxError(.invalidArgument, "a text frame must be {\"type\":\"resize\",\"cols\":N,\"rows\":N}")
                            }
                            try await session.resize(ShellResize(cols: cols, rows: rows))
                        } catch {
                            let reason = (error as? AgentBoxError)?.message ?? "a text frame must be {\"type\":\"resize\",\"cols\":N,\"rows\":N}"
                            let reply = #"{"type":"error","message":"# + String(decoding: try JSONEncoder().encode(reason), as: UTF8.self) + "}"
                            try await outbound.write(.text(reply))
                        }
                    }
                }
            }
            // Whichever side ends first ends the other.
            try await group.next()
            group.cancelAll()
        }
    }

    static func runtime(_ manager: WorkspaceManager, _ context: AgentBoxRequestContext) async throws -> WorkspaceRuntime {
        try await manager.runtime(for: WorkspaceController.key(context))
    }

    static func session(_ manager: WorkspaceManager, _ context: AgentBoxRequestContext) async throws -> ShellSession {
        try await runtime(manager, context).shell(try shellID(context))
    }

    static func shellID(_ context: AgentBoxRequestContext) throws -> String {
        let id = context.pathParameter("id")
        guard RandomID.isValid(id, prefix: "shell_", length: 16) else {
            throw ProblemError(.badRequest, "'\(id.prefix(80))' is not a shell id (shell_ and 16 letters or digits)")
        }
        return id
    }
}

extension Shell: ResponseEncodable {}
extension ShellList: ResponseEncodable {}
