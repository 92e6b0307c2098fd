import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOWebSocket

/// The desktop routes: the workspace's X display (start, stop), its screen, mouse, keyboard, windows and clipboard, and
/// the live view (VNC over a WebSocket).
///
/// Access: reading (a screenshot, the windows, the clipboard, the live view) is a GET, open to reader tokens; input,
/// window actions and setting the clipboard are writes. A reader's live view is view-only: its VNC server ignores
/// the viewer's input.
struct DesktopController {
    let manager: WorkspaceManager
    /// The largest WebSocket frame accepted from a viewer (RFB client messages are small).
    static let maxFrameSize = 1 << 20
    /// The largest clipboard request body (the text's JSON escaping included; the text itself is limited to 1 MiB).
    static let maxClipboardBody = 6 << 20

    func addRoutes(to registry: APIRouteRegistry, webSocketRouter: Router<AgentBoxRequestContext>) {
        let manager = manager
        let notFound = APIOperation.Reply(status: 404, description: "No such workspace (or window)", body: Schema.problem)
        let noDesktop = APIOperation.Reply(status: 409, description: "The workspace has no desktop: start one first", body: Schema.problem)
        let problems = [notFound, noDesktop] + Schema.problemReplies
        let done = APIOperation.Reply(status: 204, description: "Done")
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/desktop", operationID: "startDesktop",
                summary: "Start the workspace's X display (Xvfb and a window manager in its sandbox; boots it); programs started after it get DISPLAY",
                tag: "desktop", parameters: [Schema.workspaceKey], requestBody: Schema.json("DesktopStartRequest"),
                replies: [.init(status: 200, description: "The display", body: Schema.json("Desktop"))] + problems)
        ) { request, context in
            let body = try await request.decode(as: DesktopStartRequest.self, context: context)
            return try await Self.runtime(manager, context).startDesktop(body)
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/desktop", operationID: "getDesktop",
                summary: "The desktop, when it is on (it comes back on the next request after the workspace slept; never boots)",
                tag: "desktop", parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The display", body: Schema.json("Desktop"))] + problems)
        ) { _, context in
            try await Self.runtime(manager, context).desktopInfo()
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/workspaces/{key}/desktop", operationID: "stopDesktop",
                summary: "Stop the display and every program on it (never boots)", tag: "desktop", parameters: [Schema.workspaceKey],
                replies: [.init(status: 204, description: "Stopped (or was not on)")] + problems)
        ) { _, context in
            try await Self.runtime(manager, context).stopDesktop()
            return HTTPResponse.Status.noContent
        }
        let region = ["x", "y", "width", "height"].map { name in
            APIOperation.Parameter(
                name: name, location: .query, schema: ["type": "integer", "minimum": 0],
                description: "The region's \(name) in display pixels (give all four, or none for the whole display).", required: false)
        }
        let scale = APIOperation.Parameter(
            name: "scale", location: .query, schema: ["type": "number", "minimum": .number(0.05), "maximum": 1],
            description: "The PNG's size relative to the region (area-averaged; default 1).", required: false)
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/desktop/screenshot", operationID: "desktopScreenshot",
                summary: "A PNG of the display, or of a region of it, optionally scaled", tag: "desktop",
                parameters: [Schema.workspaceKey] + region + [scale],
                replies: [.init(status: 200, description: "The PNG", body: .init(contentType: "image/png", schema: ["type": "string", "format": "binary"]))]
                    + problems)
        ) { request, context in
            let query = DesktopScreenshotRequest(
                x: try Self.integer(request, "x"), y: try Self.integer(request, "y"), width: try Self.integer(request, "width"),
                height: try Self.integer(request, "height"), scale: try Self.number(request, "scale"))
            let png = try await Self.runtime(manager, context).screenshot(query)
            return Response(
                status: .ok, headers: [.contentType: "image/png", .contentLength: String(png.count), .cacheControl: "no-store"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: png)))
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/desktop/mouse", operationID: "desktopMouse",
                summary: "Move, click, double-click, press, release or scroll the mouse", tag: "desktop", parameters: [Schema.workspaceKey],
                requestBody: Schema.json("DesktopMouseRequest"), replies: [done] + problems)
        ) { request, context in
            let body = try await request.decode(as: DesktopMouseRequest.self, context: context)
            try await Self.runtime(manager, context).desktopMouse(body)
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/desktop/keyboard", operationID: "desktopKeyboard",
                summary: "Type text ({text}, Unicode) or press key chords ({keys:\"ctrl+s\"}) into the focused window", tag: "desktop",
                parameters: [Schema.workspaceKey], requestBody: Schema.json("DesktopKeyboardRequest"), replies: [done] + problems)
        ) { request, context in
            let body = try await request.decode(as: DesktopKeyboardRequest.self, context: context)
            try await Self.runtime(manager, context).desktopKeyboard(body)
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/desktop/windows", operationID: "listDesktopWindows",
                summary: "The top-level windows, with their geometry and which has the focus", tag: "desktop", parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The windows", body: Schema.json("DesktopWindowList"))] + problems)
        ) { _, context in
            try await Self.runtime(manager, context).desktopWindows()
        }
        let windowID = APIOperation.Parameter(
            name: "id", location: .path, schema: ["type": "string", "pattern": "^0x[0-9a-fA-F]{1,8}$"], description: "The window id.", required: true)
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/desktop/windows/{id}/focus", operationID: "focusDesktopWindow",
                summary: "Give a window the focus and raise it", tag: "desktop", parameters: [Schema.workspaceKey, windowID],
                replies: [done] + problems)
        ) { _, context in
            try await Self.runtime(manager, context).focusDesktopWindow(context.pathParameter("id"))
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/workspaces/{key}/desktop/windows/{id}", operationID: "closeDesktopWindow",
                summary: "Ask a window to close, as its close button does", tag: "desktop", parameters: [Schema.workspaceKey, windowID],
                replies: [done] + problems)
        ) { _, context in
            try await Self.runtime(manager, context).closeDesktopWindow(context.pathParameter("id"))
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/desktop/clipboard", operationID: "getDesktopClipboard",
                summary: "The clipboard's text", tag: "desktop", parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The text", body: Schema.json("DesktopClipboard"))] + problems)
        ) { _, context in
            try await Self.runtime(manager, context).desktopClipboard()
        }
        registry.add(
            APIOperation(
                method: .put, path: "/v1/workspaces/{key}/desktop/clipboard", operationID: "setDesktopClipboard",
                summary: "Put text on the clipboard (at most 1 MiB)", tag: "desktop", parameters: [Schema.workspaceKey],
                requestBody: Schema.json("DesktopClipboard"), replies: [done] + problems)
        ) { request, context in
            let body = try await context.requestDecoder.decode(DesktopClipboard.self, from: request, limit: Self.maxClipboardBody)
            try await Self.runtime(manager, context).setDesktopClipboard(body)
            return HTTPResponse.Status.noContent
        }
        let stream = APIOperation(
            method: .get, path: "/v1/workspaces/{key}/desktop/stream", operationID: "streamDesktop",
            summary: "WebSocket: the live view, VNC (RFB) in binary frames both ways; view-only for reader tokens. Holds the workspace awake",
            tag: "desktop", parameters: [Schema.workspaceKey],
            replies: [
                .init(status: 101, description: "Switching to the WebSocket protocol"),
                .init(status: 426, description: "Not a WebSocket upgrade request", body: Schema.problem),
            ] + problems, access: .stream)
        registry.add(stream) { _, context -> Response in
            _ = try await Self.runtime(manager, context).desktopInfo()
            throw ProblemError(HTTPResponse.Status(code: 426, reasonPhrase: "Upgrade Required"), "this route takes a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket)")
        }
        registry.declare(stream)
        webSocketRouter.ws(RouterPath(stream.routerPath)) { request, context in
            let offered = request.headers[.secWebSocketProtocol]?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
            let headers: HTTPFields = offered.map { [.secWebSocketProtocol: $0] } ?? [:]
            if try await ClusterWebSocketForwarder.remoteOwner(manager, WorkspaceController.key(context), request: request) != nil {
                return .upgrade(headers)
            }
            _ = try await Self.runtime(manager, context).desktopInfo()
            return .upgrade(headers)
        } onUpgrade: { inbound, outbound, context in
            if let cluster = manager.cluster,
                let node = try await ClusterWebSocketForwarder.remoteOwner(manager, WorkspaceController.key(context.requestContext), request: context.request)
            {
                try await ClusterWebSocketForwarder.relay(
                    to: node, cluster: cluster, request: context.request, context: context.requestContext, inbound: inbound, outbound: outbound)
                return
            }
            let runtime = try await Self.runtime(manager, context.requestContext)
            let viewOnly = context.requestContext.principal.role == .reader
            do {
                try await runtime.withDesktopStream(viewOnly: viewOnly) { channel in
                    try await Self.relay(channel, inbound: inbound, outbound: outbound, until: context.requestContext.revocation)
                }
            } catch {
                try? await outbound.close(.unexpectedServerError, reason: "the live view is not available: \(error)".prefix(100).description)
            }
        }
    }

    /// Carries RFB bytes between the viewer's WebSocket and the display's VNC server until either side ends (or the
    /// request's token is revoked).
    static func relay(
        _ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
        until revocation: AsyncStream<Never>?
    ) async throws {
        try await channel.executeThenClose { fromServer, toServer in
            try await withThrowingTaskGroup(of: Void.self) { group in
                if let revocation {
                    group.addTask {
                        for await _ in revocation {}
                        try await outbound.close(.policyViolation, reason: "token revoked")
                    }
                }
                group.addTask {
                    for try await bytes in fromServer { try await outbound.write(.binary(bytes)) }
                    try await outbound.close(.normalClosure, reason: nil)
                }
                group.addTask {
                    for try await message in inbound.messages(maxSize: maxFrameSize) {
                        if case .binary(let bytes) = message { try await toServer.write(bytes) }
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    static func runtime(_ manager: WorkspaceManager, _ context: AgentBoxRequestContext) async throws -> WorkspaceRuntime {
        try await manager.runtime(for: WorkspaceController.key(context))
    }

    static func integer(_ request: Request, _ name: String) throws -> Int? {
        guard let text = request.uri.queryParameters.get(name) else { return nil }
        guard let value = Int(text) else { throw ProblemError(.badRequest, "query parameter '\(name)' must be an integer, not '\(text.prefix(40))'") }
        return value
    }

    static func number(_ request: Request, _ name: String) throws -> Double? {
        guard let text = request.uri.queryParameters.get(name) else { return nil }
        guard let value = Double(text), value.isFinite else {
            throw ProblemError(.badRequest, "query parameter '\(name)' must be a number, not '\(text.prefix(40))'")
        }
        return value
    }

    /// The request and answer bodies' schemas, for the OpenAPI document.
    static let schemas: [String: JSONValue] = [
        "DesktopStartRequest": [
            "type": "object",
            "properties": ["width": ["type": "integer", "minimum": 64, "maximum": 4096], "height": ["type": "integer", "minimum": 64, "maximum": 4096]],
        ],
        "Desktop": [
            "type": "object", "required": ["display", "width", "height"],
            "properties": ["display": ["type": "string"], "width": ["type": "integer"], "height": ["type": "integer"]],
        ],
        "DesktopMouseRequest": [
            "type": "object", "required": ["action", "x", "y"],
            "properties": [
                "action": ["type": "string", "enum": .array(DesktopMouseAction.allCases.map { .string($0.rawValue) })],
                "x": ["type": "integer", "minimum": 0], "y": ["type": "integer", "minimum": 0],
                "button": ["type": "string", "enum": .array(DesktopMouseButton.allCases.map { .string($0.rawValue) })],
                "amount": ["type": "integer", "minimum": -100, "maximum": 100],
            ],
        ],
        "DesktopKeyboardRequest": [
            "type": "object", "description": "Exactly one of text and keys",
            "properties": ["text": ["type": "string", "minLength": 1], "keys": ["type": "string", "minLength": 1]],
        ],
        "DesktopWindow": [
            "type": "object", "required": ["id", "title", "x", "y", "width", "height", "focused"],
            "properties": [
                "id": ["type": "string"], "title": ["type": "string"], "x": ["type": "integer"], "y": ["type": "integer"],
                "width": ["type": "integer"], "height": ["type": "integer"], "focused": ["type": "boolean"],
            ],
        ],
        "DesktopWindowList": [
            "type": "object", "required": ["items"],
            "properties": ["items": ["type": "array", "items": ["$ref": "#/components/schemas/DesktopWindow"]]],
        ],
        "DesktopClipboard": ["type": "object", "required": ["text"], "properties": ["text": ["type": "string"]]],
    ]
}

extension Desktop: ResponseEncodable {}
extension DesktopWindowList: ResponseEncodable {}
extension DesktopClipboard: ResponseEncodable {}

extension JSONValue {
    /// This object with `more`'s members added (for schemas declared beside their controller).
    func adding(_ more: [String: JSONValue]) -> JSONValue {
        guard case .object(let members) = self else { return self }
        return .object(members.merging(more) { existing, _ in existing })
    }
}
