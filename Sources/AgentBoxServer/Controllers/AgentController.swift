import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird

/// The agent registry: which agents this server runs, and installing them.
struct AgentController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        registry.add(
            APIOperation(
                method: .get, path: "/v1/agents", operationID: "listAgents", summary: "The agents sessions may run, and whether each is installed",
                tag: "agents", replies: [.init(status: 200, description: "The agents", body: Schema.json("AgentList"))] + Schema.problemReplies)
        ) { _, _ in
            AgentList(items: AgentInstaller(configuration: manager.configuration, logger: manager.logger).list())
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/agents/{id}/install", operationID: "installAgent",
                summary: "Install an agent's binary into the data directory (PATH, npm, then a PyPI wheel); each step is in the log", tag: "agents",
                parameters: [.init(name: "id", location: .path, schema: Schema.string, description: "The agent id", required: true)],
                replies: [
                    .init(status: 200, description: "Installed", body: Schema.json("AgentInstallResult")), Schema.notFound,
                    .init(status: 503, description: "No source could install it"),
                ] + Schema.problemReplies)
        ) { _, context in
            try await AgentInstaller(configuration: manager.configuration, logger: manager.logger).install(context.pathParameter("id"))
        }
    }
}

extension AgentList: ResponseEncodable {}
extension AgentInstallResult: ResponseEncodable {}
