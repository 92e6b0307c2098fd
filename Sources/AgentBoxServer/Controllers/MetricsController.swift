import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird

/// `GET /metrics` (Prometheus text), `GET /v1/workspaces/{key}/metrics` and `GET /v1/workspaces/{key}/usage`. The
/// figures are the library's (``WorkspaceManager/prometheusText()``, ``WorkspaceManager/metrics(key:)``,
/// ``WorkspaceManager/usage(key:)``); the routes only carry them.
struct MetricsController {
    let manager: WorkspaceManager

    /// The content type of Prometheus' text exposition format.
    static let prometheusContentType = "text/plain; version=0.0.4; charset=utf-8"

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        registry.add(
            APIOperation(
                method: .get, path: "/metrics", operationID: "metrics",
                summary: "The server's metrics in Prometheus' text format (needs the bearer token, like /v1)", tag: "server",
                replies: [
                    .init(status: 200, description: "Prometheus text exposition", body: .init(contentType: Self.prometheusContentType, schema: Schema.string)),
                    .init(status: 401, description: "Missing or wrong bearer token", body: Schema.problem),
                    .init(status: 404, description: "This server's metrics go to its embedder's own backend", body: Schema.problem),
                ])
        ) { _, _ in
            guard let text = try await manager.prometheusText() else {
                throw ProblemError(.notFound, "this server reports its metrics to its embedder's own swift-metrics backend")
            }
            return Response(
                status: .ok, headers: [.contentType: Self.prometheusContentType], body: .init(byteBuffer: ByteBuffer(bytes: text)))
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/metrics", operationID: "workspaceMetrics",
                summary: "What the workspace uses now: CPU, memory, tasks, disk and network (never boots it)", tag: "workspaces",
                parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The figures", body: Schema.json("WorkspaceMetrics")), Schema.notFound]
                    + Schema.problemReplies)
        ) { _, context in
            try await manager.metrics(key: WorkspaceController.key(context))
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/usage", operationID: "workspaceUsage",
                summary: "What the workspace consumed of metered services: model calls and host tool calls (never boots it)",
                tag: "workspaces", parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The figures", body: Schema.json("WorkspaceUsage")), Schema.notFound]
                    + Schema.problemReplies)
        ) { _, context in
            try await manager.usage(key: WorkspaceController.key(context))
        }
    }
}

extension WorkspaceMetrics: ResponseEncodable {}
extension WorkspaceUsage: ResponseEncodable {}
