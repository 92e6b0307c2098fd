import AgentBox
import AgentBoxAPI
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import HummingbirdWebSocket
import NIOCore
import NIOHTTP1
import Synchronization

/// Preview URLs: create, list and revoke them under `/v1`, and the proxy itself at `/preview/{token}/...`, which
/// needs no bearer token (the preview token is the credential).
struct PreviewController {
    let manager: WorkspaceManager
    /// With `serve --preview-domain D`, `{token}.D` serves the preview at the root of its own host, which
    /// development servers that use absolute paths need.
    let previewDomain: String?

    static let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]

    func addRoutes(to registry: APIRouteRegistry, router: Router<AgentBoxRequestContext>, webSocketRouter: Router<AgentBoxRequestContext>) {
        let manager = manager
        let previewDomain = previewDomain
        let token = APIOperation.Parameter(
            name: "token", location: .path, schema: ["type": "string", "pattern": "^[a-z0-9]{32}$"], description: "The preview token.",
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
        for method in Self.methods {
            router.on("/preview/:token", method: method) { request, context in
                try await Self.proxy(manager, request, context)
            }
            router.on("/preview/:token/**", method: method) { request, context in
                try await Self.proxy(manager, request, context)
            }
        }
        // WebSocket upgrades (development servers' hot reload): the client's socket is relayed, message by message,
        // to a WebSocket the server opens to the same path inside the workspace.
        webSocketRouter.ws("/preview/:token/**") { request, context in
            _ = try await manager.resolvePreview(token: context.pathParameter("token"))
            // The first subprotocol the client offers is the one answered; the server inside is offered them all.
            let offered = request.headers[.secWebSocketProtocol]?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
            return .upgrade(offered.map { [.secWebSocketProtocol: $0] } ?? [:])
        } onUpgrade: { inbound, outbound, context in
            let token = context.requestContext.pathParameter("token")
            try await Self.relayWebSocket(
                manager, request: context.request, token: token, target: String(context.request.uri.string.dropFirst("/preview/\(token)".count)),
                context: context.requestContext, inbound: inbound, outbound: outbound)
        }
        // Host-based previews (`{token}.{domain}`) take WebSocket upgrades on any path.
        if let domain = previewDomain {
            for path in ["/", "/**"] {
                webSocketRouter.ws(RouterPath(path)) { request, _ in
                    guard let token = Self.hostToken(request, domain: domain) else { return .dontUpgrade }
                    _ = try await manager.resolvePreview(token: token)
                    let offered = request.headers[.secWebSocketProtocol]?.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
                    return .upgrade(offered.map { [.secWebSocketProtocol: $0] } ?? [:])
                } onUpgrade: { inbound, outbound, context in
                    guard let token = Self.hostToken(context.request, domain: domain) else { return }
                    try await Self.relayWebSocket(
                        manager, request: context.request, token: token, target: context.request.uri.string, context: context.requestContext,
                        inbound: inbound, outbound: outbound)
                }
            }
        }
    }

    /// The token of a host-based preview request (`Host: {token}.{domain}[:port]`), or `nil`.
    static func hostToken(_ request: Request, domain: String) -> String? {
        guard var host = request.head.authority?.lowercased() else { return nil }
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") { host = String(host[..<colon]) }
        guard host.hasSuffix("." + domain) else { return nil }
        let token = String(host.dropLast(domain.count + 1))
        return token.contains(".") ? nil : token
    }

    static func relayWebSocket(
        _ manager: WorkspaceManager, request: Request, token: String, target: String, context: AgentBoxRequestContext,
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter
    ) async throws {
        let (runtime, port) = try await manager.resolvePreview(token: token)
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
                    try await relay(from: inbound, to: innerOutbound, and: innerInbound, to: outbound)
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

    /// Copies messages both ways until either side closes; then the other side is closed too.
    static func relay(
        from clientInbound: WebSocketInboundStream, to serverOutbound: WebSocketOutboundWriter,
        and serverInbound: WebSocketInboundStream, to clientOutbound: WebSocketOutboundWriter
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await message in clientInbound.messages(maxSize: ShellController.maxFrameSize) {
                    try await serverOutbound.write(Self.frame(message))
                }
                try? await serverOutbound.close(.normalClosure, reason: nil)
            }
            group.addTask {
                for try await message in serverInbound.messages(maxSize: ShellController.maxFrameSize) {
                    try await clientOutbound.write(Self.frame(message))
                }
                try? await clientOutbound.close(.normalClosure, reason: nil)
            }
            try await group.next()
            group.cancelAll()
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

    /// `/preview/{token}/…`: the target is what follows the prefix.
    static func proxy(_ manager: WorkspaceManager, _ request: Request, _ context: AgentBoxRequestContext) async throws -> Response {
        let token = context.pathParameter("token")
        let prefix = "/preview/\(token)"
        // The raw target as the client sent it (its escapes intact), minus the prefix.
        let full = request.uri.string
        let pathEnd = full.firstIndex(of: "?") ?? full.endIndex
        guard full[..<pathEnd].hasPrefix(prefix) else { throw ProblemError(.notFound, "no such preview") }
        let target = String(full.dropFirst(prefix.count))
        if target.isEmpty || target.hasPrefix("?") {
            _ = try await manager.resolvePreview(token: token)
            // Pages use relative URLs: the root of a preview is its directory.
            return Response(status: .permanentRedirect, headers: [.location: prefix + "/" + target])
        }
        return try await proxy(manager, request, token: token, target: target, prefix: prefix)
    }

    /// Sends `request` to the preview `token`'s port with `target` (a path from `/`, query included); `prefix` is
    /// where the preview sits in this server's URL space (empty for a host-based preview).
    static func proxy(_ manager: WorkspaceManager, _ request: Request, token: String, target: String, prefix: String) async throws -> Response {
        var target = target
        let (runtime, port) = try await manager.resolvePreview(token: token)
        if request.method == .options, request.headers[.origin] != nil,
            let requested = request.headers[.accessControlRequestMethod]
        {
            var headers = HTTPFields()
            for (name, value) in PreviewProxy.preflightHeaders(
                requestedMethod: requested, requestedHeaders: request.headers[.accessControlRequestHeaders])
            {
                headers.append(HTTPField(name: HTTPField.Name(name)!, value: value))
            }
            return Response(status: .noContent, headers: headers)
        }
        if target.hasPrefix("//") { target = "/" + target.drop(while: { $0 == "/" }) }
        let contentLength = request.headers[.contentLength].flatMap { Int64($0) }
        let hasBody = (contentLength ?? 0) > 0 || request.headers[.transferEncoding] != nil
        let outgoing = PreviewProxy.request(
            port: port, method: request.method.rawValue, target: target,
            headers: request.headers.map { (name: $0.name.rawName, value: $0.value) },
            body: hasBody ? request.body : nil, contentLength: hasBody ? contentLength : nil,
            publicHost: request.head.authority, scheme: scheme(request), prefix: prefix)
        // The workspace stays awake until the answer has been sent in full.
        let activity = try await runtime.beginActivity()
        let response: HTTPClientResponse
        do {
            response = try await runtime.send(outgoing, port: port, timeout: .seconds(300))
        } catch {
            await runtime.endActivity(activity)
            throw error
        }
        var headers = HTTPFields()
        for (name, value) in PreviewProxy.responseHeaders(response.headers, port: port, prefix: prefix) {
            if let fieldName = HTTPField.Name(name) { headers.append(HTTPField(name: fieldName, value: value)) }
        }
        return Response(
            status: .init(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase), headers: headers,
            body: ResponseBody { writer in
                do {
                    for try await chunk in response.body { try await writer.write(chunk) }
                    try await writer.finish(nil)
                } catch {
                    await runtime.endActivity(activity)
                    throw error
                }
                await runtime.endActivity(activity)
            })
    }
}

/// Whether the WebSocket inside was reached (then a failure is the relay's, not a refused connection's).
private final class ConnectedFlag: Sendable {
    let value = Atomic(false)
}

/// Sends requests for `{token}.{domain}` to the preview, whatever their path; others go on to the routes.
struct HostPreviewMiddleware: RouterMiddleware {
    let manager: WorkspaceManager
    let domain: String

    func handle(_ request: Request, context: AgentBoxRequestContext, next: (Request, AgentBoxRequestContext) async throws -> Response) async throws -> Response {
        guard let token = PreviewController.hostToken(request, domain: domain) else { return try await next(request, context) }
        return try await PreviewController.proxy(manager, request, token: token, target: request.uri.string, prefix: "")
    }
}

extension Preview: ResponseEncodable {}
extension PreviewList: ResponseEncodable {}
