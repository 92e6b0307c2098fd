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
                tag: "agents", replies: [.init(status: 200, description: "The agents", body: Schema.json("AgentList"))] + Schema.problemReplies,
                scopedTokens: true)
        ) { _, _ in
            AgentList(items: AgentInstaller(configuration: manager.configuration, logger: manager.logger).list())
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/agents/{id}", operationID: "getAgent",
                summary: "An agent: installed (version, package version), being installed, install sources, credentials available (names only)",
                tag: "agents", parameters: [.init(name: "id", location: .path, schema: Schema.string, description: "The agent id", required: true)],
                replies: [.init(status: 200, description: "The agent", body: Schema.json("AgentDetails")), Schema.notFound] + Schema.problemReplies,
                scopedTokens: true)
        ) { _, context in
            try manager.agentDetails(context.pathParameter("id"))
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/agents/{id}/install", operationID: "installAgent",
                summary: "Install an agent's binary into the data directory (PATH, npm, then PyPI), or follow the install of it under way",
                tag: "agents",
                parameters: [
                    .init(name: "id", location: .path, schema: Schema.string, description: "The agent id", required: true),
                    .init(
                        name: "stream", location: .query, schema: Schema.boolean,
                        description: "Answer with SSE at once (as with `Accept: text/event-stream`): `progress {phase, line, bytes?, totalBytes?}` events, then `done` (AgentInstallResult) or `error` (Problem)",
                        required: false),
                ],
                requestBody: Schema.json("AgentInstallRequest"),
                replies: [
                    .init(status: 200, description: "Installed", body: Schema.json("AgentInstallResult")), Schema.notFound,
                    .init(status: 409, description: "Another version of it is being installed", body: Schema.problem),
                    .init(status: 503, description: "No source could install it", body: Schema.problem),
                ] + Schema.problemReplies)
        ) { request, context in
            let id = context.pathParameter("id")
            let stream = try ProcessController.flag(request, "stream") || request.headers[.accept]?.contains("text/event-stream") == true
            // The body is optional: no body (or an empty one) installs the newest.
            let body = try await request.body.collect(upTo: 64 << 10)
            var asked = AgentInstallRequest()
            if body.readableBytes > 0 {
                guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
                    throw ProblemError(.unsupportedMediaType, "the body, when there is one, is JSON: {\"version\": \"…\", \"reinstall\": true}")
                }
                asked = try AgentBoxRequestDecoder.decode(AgentInstallRequest.self, body: Data(body.readableBytesView))
            }
            let job = try manager.installAgent(id, version: asked.version, reinstall: asked.reinstall ?? false)
            guard stream else { return try await job.result().response(from: request, context: context) }
            // The install goes on if the client leaves; the stream only follows it.
            let (events, continuation) = AsyncStream<(name: String, data: [UInt8])>.makeStream(bufferingPolicy: .bufferingNewest(1024))
            let follower = Task {
                let encoder = AgentBoxJSON.makeEncoder()
                for await step in job.steps() {
                    continuation.yield(("progress", Array((try? encoder.encode(step)) ?? Data())))
                }
                do {
                    continuation.yield(("done", Array(try encoder.encode(try await job.result()))))
                } catch let error as AgentBoxError {
                    let problem: JSONValue = ["status": .number(Double(ProblemError.status(for: error.code).code)), "detail": .string(error.message)]
                    continuation.yield(("error", problem.jsonBytes))
                } catch {
                    continuation.yield(("error", (["status": 500, "detail": .string("\(error)")] as JSONValue).jsonBytes))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in follower.cancel() }
            return ServerSentEvents.response(events, until: context.revocation) { event in
                ServerSentEvents.frame(id: nil, event: event.name, data: Data(event.data))
            }
        }
    }
}

extension AgentList: ResponseEncodable {}
extension AgentInstallResult: ResponseEncodable {}
extension AgentDetails: ResponseEncodable {}
