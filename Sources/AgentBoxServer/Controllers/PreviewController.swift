import AgentBox
import AgentBoxAPI
import AgentBoxStore
import AsyncHTTPClient
import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import HummingbirdWSClient
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Synchronization

/// Preview URLs: create, list and revoke them under `/v1`, and the proxy itself at `/preview/{token}/...`, which
/// needs no bearer token (the preview token is the credential).
struct PreviewController {
    let manager: WorkspaceManager
    /// With `serve --preview-domain D`, `{token}.D` serves the preview at the root of its own host, which
    /// development servers that use absolute paths need.
    let previewDomain: String?

    func addRoutes(to registry: APIRouteRegistry, router: Router<AgentBoxRequestContext>, webSocketRouter: Router<AgentBoxRequestContext>) {
        let manager = manager
        let previewDomain = previewDomain
        let token = APIOperation.Parameter(
            name: "token", location: .path, schema: ["type": "string", "pattern": "^([a-z0-9]{32}|[0-9a-f]{16})$"], description: "The preview token, or its id.",
            required: true)
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/previews", operationID: "createPreview",
                summary: "Make a preview URL for a port of the workspace (never boots it)", tag: "network",
                parameters: [Schema.workspaceKey], requestBody: Schema.json("PreviewRequest"),
                replies: [.init(status: 201, description: "Made", body: Schema.json("Preview")), Schema.notFound] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: PreviewRequest.self, context: context)
            if let seconds = body.expiresInSeconds, seconds <= 0 {
                throw ProblemError(.badRequest, "expiresInSeconds must be positive, not \(seconds)")
            }
            var preview = try await manager.createPreview(
                key: WorkspaceController.key(context), port: body.port, lifetime: body.expiresInSeconds.map { .seconds($0) })
            if let domain = previewDomain {
                let port = request.head.authority.flatMap { authority in
                    authority.lastIndex(of: ":").map { String(authority[authority.index(after: $0)...]) }
                }.map { ":" + $0 } ?? ""
                preview.url = "\(Self.scheme(request))://\(preview.token).\(domain)\(port)/"
            } else {
                preview.url = Self.publicOrigin(request).map { $0 + preview.path }
            }
            return EditedResponse(status: .created, response: preview)
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/previews", operationID: "listPreviews",
                summary: "The workspace's unexpired previews (never boots it)", tag: "network", parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The previews", body: Schema.json("PreviewList")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.previews(key: WorkspaceController.key(context))
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/workspaces/{key}/previews/{token}", operationID: "revokePreview",
                summary: "Revoke a preview: its URL answers 404 from now on", tag: "network", parameters: [Schema.workspaceKey, token],
                replies: [.init(status: 204, description: "Revoked"), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.revokePreview(key: WorkspaceController.key(context), token: context.pathParameter("token"))
            return HTTPResponse.Status.noContent
        }
        // HTTP requests to a preview never reach these routes: PreviewProxyHandler relays them on the connection, and
        // outside a cluster WebSocket upgrades too (as bytes after the workspace's 101, PreviewByteRelay). In a
        // cluster, WebSocket upgrades (development servers' hot reload) come here: the client's socket is relayed,
        // message by message, to a WebSocket the server opens to the same path inside the workspace, or to the node
        // that serves it.
        webSocketRouter.ws("/preview/:token/**") { request, context in
            let offeredFirst = request.headers[.secWebSocketProtocol]?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
            // In a cluster, the upgrade of a workspace another node serves is relayed there.
            if try await Self.remoteOwner(manager, token: context.pathParameter("token"), request: request) != nil {
                return .upgrade(offeredFirst.map { [.secWebSocketProtocol: $0] } ?? [:])
            }
            _ = try await manager.resolvePreview(token: context.pathParameter("token"))
            // The first subprotocol the client offers is the one answered; the server inside is offered them all.
            let offered = request.headers[.secWebSocketProtocol]?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
            return .upgrade(offered.map { [.secWebSocketProtocol: $0] } ?? [:])
        } onUpgrade: { inbound, outbound, context in
            let token = context.requestContext.pathParameter("token")
            if let cluster = manager.cluster, let node = try await Self.remoteOwner(manager, token: token, request: context.request) {
                try await ClusterWebSocketForwarder.relay(
                    to: node, cluster: cluster, request: context.request, context: context.requestContext, inbound: inbound, outbound: outbound)
                return
            }
            try await Self.relayWebSocket(
                manager, request: context.request, token: token, target: String(context.request.uri.string.dropFirst("/preview/\(token)".count)),
                context: context.requestContext, inbound: inbound, outbound: outbound)
        }
        // Host-based previews' upgrades come here too: PreviewProxyHandler addresses them to `/preview/{token}/...`.
        registry.declare(.get, "/preview/:token/**", APIDeclaration(access: .previewToken, scope: .preview))
    }

    /// The node that serves the workspace of preview `token`, when it is another one.
    static func remoteOwner(_ manager: WorkspaceManager, token: String, request: Request) async throws -> NodeRecord? {
        guard manager.cluster != nil else { return nil }
        let (key, _) = try await manager.previewTarget(token: token)
        return try await ClusterWebSocketForwarder.remoteOwner(manager, key, request: request)
    }

    static func relayWebSocket(
        _ manager: WorkspaceManager, request: Request, token: String, target: String, context: AgentBoxRequestContext,
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter
    ) async throws {
        let (runtime, port) = try await manager.resolvePreview(token: token)
        manager.metrics.previewRequests.increment()
        let door = runtime.previewDoor
        let activity = try await runtime.beginActivity()
        defer { Task { await runtime.endActivity(activity) } }
        let group = try await runtime.networkEventLoopGroup()
        var configuration = WebSocketClientConfiguration(maxFrameSize: ShellController.maxFrameSize)
        if let offered = request.headers[.secWebSocketProtocol] { configuration.additionalHeaders[.secWebSocketProtocol] = offered }
        let giveUp = ContinuousClock.now + manager.configuration.portWaitLimit
        while true {
            let connected = ConnectedFlag()
            do {
                try await WebSocketClient.connect(
                    url: "ws://127.0.0.1:\(port)\(target.isEmpty ? "/" : target)", configuration: configuration, eventLoopGroup: group,
                    logger: context.logger
                ) { innerInbound, innerOutbound, _ in
                    connected.value.store(true, ordering: .relaxed)
                    try await relay(from: inbound, to: innerOutbound, and: innerInbound, to: outbound, counting: door)
                }
                try? await outbound.close(.normalClosure, reason: nil)
                return
            } catch where !connected.value.load(ordering: .relaxed) && WorkspaceRuntime.isConnectionRefused(error) && ContinuousClock.now < giveUp {
                try await Task.sleep(for: .milliseconds(50))
            } catch where !connected.value.load(ordering: .relaxed) {
                try? await outbound.close(.unexpectedServerError, reason: "nothing answers a WebSocket on port \(port)")
                return
            }
        }
    }

    /// Copies messages both ways until either side closes; then the other side is closed too. The messages' bytes
    /// are counted as the workspace's preview traffic through `door` (the WebSocket inside is the client's own, not
    /// a ``WorkspaceSocket``, so its bytes are counted here: payloads, without framing); `nil` counts nothing (a
    /// relay to another node of a cluster, which counts them itself).
    static func relay(
        from clientInbound: WebSocketInboundStream, to serverOutbound: WebSocketOutboundWriter,
        and serverInbound: WebSocketInboundStream, to clientOutbound: WebSocketOutboundWriter, counting door: TrafficDoor?
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await message in clientInbound.messages(maxSize: ShellController.maxFrameSize) {
                    door?.countIn(Self.size(message))
                    try await serverOutbound.write(Self.frame(message))
                }
                try? await serverOutbound.close(.normalClosure, reason: nil)
            }
            group.addTask {
                for try await message in serverInbound.messages(maxSize: ShellController.maxFrameSize) {
                    door?.countOut(Self.size(message))
                    try await clientOutbound.write(Self.frame(message))
                }
                try? await clientOutbound.close(.normalClosure, reason: nil)
            }
            try await group.next()
            group.cancelAll()
        }
    }

    static func size(_ message: WebSocketMessage) -> Int {
        switch message {
        case .text(let text): text.utf8.count
        case .binary(let bytes): bytes.readableBytes
        }
    }

        static func frame(_ message: WebSocketMessage) -> WebSocketOutboundWriter.OutboundFrame {
        switch message {
        case .text(let text): .text(text)
        case .binary(let bytes): .binary(bytes)
        }
    }

    /// `scheme://host` as the client reached this server (from `Host` and `X-Forwarded-Proto`), for absolute URLs.
    static func publicOrigin(_ request: Request) -> String? {
        guard let host = request.head.authority, !host.isEmpty else { return nil }
        return "\(scheme(request))://\(host)"
    }

    static func scheme(_ request: Request) -> String {
        request.headers[HTTPField.Name("X-Forwarded-Proto")!] == "https" ? "https" : "http"
    }
}

/// Whether the WebSocket inside was reached (then a failure is the relay's, not a refused connection's).
private final class ConnectedFlag: Sendable {
    let value = Atomic(false)
}

extension Preview: ResponseEncodable {}
extension PreviewList: ResponseEncodable {}
