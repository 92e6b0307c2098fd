import AgentBoxAPI
import Foundation
import Hummingbird

/// `GET /v1/health` and `GET /v1/openapi.json`.
struct HealthController {
    func addRoutes(to registry: APIRouteRegistry) {
        registry.add(
            APIOperation(
                method: .get, path: "/v1/health", operationID: "health", summary: "Liveness and version", tag: "server",
                replies: [.init(status: 200, description: "The server is up", body: Schema.json("Health"))],
                access: .open)
        ) { _, _ in
            Health(version: agentBoxVersion)
        }
        // Load balancers' and monitors' checks often send HEAD: the one route that answers it (no GET is run for it).
        registry.add(
            APIOperation(
                method: .head, path: "/v1/health", operationID: "healthHead", summary: "Liveness, without a body", tag: "server",
                replies: [.init(status: 200, description: "The server is up", body: nil)],
                access: .open)
        ) { _, _ in
            Response(status: .ok)
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/openapi.json", operationID: "openapi", summary: "This API's OpenAPI 3.1 document",
                tag: "server",
                replies: [.init(status: 200, description: "The document", body: .init(contentType: "application/json", schema: ["type": "object"]))])
        ) { [registry] _, _ in
            // Built on request from the registry, which holds every route by the time the server serves.
            let data = try AgentBoxJSON.makeEncoder().encode(OpenAPIDocument.build(operations: registry.operations))
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
    }
}

extension Health: ResponseEncodable {}
extension Workspace: ResponseEncodable {}
extension WorkspaceList: ResponseEncodable {}
