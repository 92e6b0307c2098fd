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
                parameters: [
                    .init(name: "id", location: .path, schema: Schema.string, description: "The agent id", required: true),
                    .init(
                        name: "stream", location: .query, schema: Schema.boolean,
                        description: "Answer with SSE at once: a `progress {line}` event per step, then `result` (AgentInstallResult) or `error` (Problem)",
                        required: false),
                ],
                replies: [
                    .init(status: 200, description: "Installed", body: Schema.json("AgentInstallResult")), Schema.notFound,
                    .init(status: 503, description: "No source could install it"),
                ] + Schema.problemReplies)
        ) { request, context in
            let installer = AgentInstaller(configuration: manager.configuration, logger: manager.logger)
            let id = context.pathParameter("id")
            guard try ProcessController.flag(request, "stream") else { return try await installer.install(id).response(from: request, context: context) }
            // The install goes on if the client leaves; the stream only reports it.
            let (events, continuation) = AsyncStream<(name: String, data: JSONValue)>.makeStream(bufferingPolicy: .bufferingNewest(1024))
            Task {
                do {
                    let result = try await installer.install(id) { line in continuation.yield(("progress", ["line": .string(line)])) }
                    continuation.yield(("result", try JSONValue.parse(AgentBoxJSON.makeEncoder().encode(result))))
                } catch let error as AgentBoxError {
                    continuation.yield(("error", ["status": .number(Double(ProblemError.status(for: error.code).code)), "detail": .string(error.message)]))
                } catch {
                    continuation.yield(("error", ["status": 500, "detail": .string("\(error)")]))
                }
                continuation.finish()
            }
            return ServerSentEvents.response(events) { event in
                ServerSentEvents.frame(id: nil, event: event.name, data: Data(event.data.jsonBytes))
            }
        }
    }
}

extension AgentList: ResponseEncodable {}
extension AgentInstallResult: ResponseEncodable {}
