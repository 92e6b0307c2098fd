import AgentBox
import AgentBoxAPI
import AgentBoxStore
import Foundation
import NIOWebSocket
import HTTPTypes
import Hummingbird
import HummingbirdWSClient
import HummingbirdWebSocket

/// In a cluster, a WebSocket (a shell, a preview's hot reload) whose workspace another node serves is relayed, message
/// by message, to the same route on that node: the client's upgrade is accepted here, a WebSocket is opened to the
/// owner with the client's credentials and subprotocols, and messages go both ways until either side closes.
enum ClusterWebSocketForwarder {
    /// The live node that serves `key`, when it is not this one (nil without a cluster, or when this node serves it).
    static func remoteOwner(_ manager: WorkspaceManager, _ key: WorkspaceKey, request: Request) async throws -> NodeRecord? {
        guard let cluster = manager.cluster, case .remote(let node) = try await cluster.claim(key) else { return nil }
        if let from = request.headers[ClusterForwardingMiddleware.forwardedHeader] {
            throw ProblemError(
                .serviceUnavailable, "workspace '\(key)' moved to node '\(node.id)' while node '\(from)' forwarded the request; try again",
                headers: [.retryAfter: "1"])
        }
        return node
    }

    /// Relays the upgraded client connection to `node`.
    static func relay(
        to node: NodeRecord, cluster: ClusterCoordinator, request: Request, context: AgentBoxRequestContext, inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter
    ) async throws {
        var configuration = WebSocketClientConfiguration(maxFrameSize: ShellController.maxFrameSize)
        for name in [HTTPField.Name.authorization, .secWebSocketProtocol, .cookie] {
            if let value = request.headers[name] { configuration.additionalHeaders[name] = value }
        }
        configuration.additionalHeaders[ClusterForwardingMiddleware.forwardedHeader] = cluster.options.nodeId
        let base = node.address.hasSuffix("/") ? String(node.address.dropLast()) : node.address
        let url = base.replacingOccurrences(of: "http://", with: "ws://").replacingOccurrences(of: "https://", with: "wss://")
            + request.uri.description
        do {
            try await WebSocketClient.connect(url: url, configuration: configuration, logger: context.logger) { innerInbound, innerOutbound, _ in
                try await PreviewController.relay(from: inbound, to: innerOutbound, and: innerInbound, to: outbound, counting: nil)
            }
            try? await outbound.close(.normalClosure, reason: nil)
        } catch {
            cluster.reportUnreachable(node)
            try? await outbound.close(.unexpectedServerError, reason: "node '\(node.id)', which serves this workspace, does not answer")
        }
    }
}
