import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird

/// The cron routes: a workspace's scheduled jobs, their runs, and running one now. None of them boots the workspace;
/// a job's run does, when it comes.
struct CronController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        let jobID = APIOperation.Parameter(
            name: "id", location: .path, schema: ["type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"], description: "The job's id.",
            required: true)
        let notFound = APIOperation.Reply(status: 404, description: "No such workspace or job", body: Schema.problem)
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/cron", operationID: "createCronJob",
                summary: "Schedule a command or an agent prompt in the workspace (never boots it)", tag: "cron",
                parameters: [Schema.workspaceKey], requestBody: Schema.json("CronJobRequest"),
                replies: [
                    .init(status: 201, description: "Scheduled", body: Schema.json("CronJob")), Schema.notFound,
                    .init(status: 409, description: "The id is taken, or the workspace has the most jobs it may", body: Schema.problem),
                ] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: CronJobRequest.self, context: context)
            return EditedResponse(status: .created, response: try await manager.createCronJob(key: WorkspaceController.key(context), body))
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/cron", operationID: "listCronJobs", summary: "The workspace's cron jobs, oldest first",
                tag: "cron", parameters: [Schema.workspaceKey],
                replies: [.init(status: 200, description: "The jobs", body: Schema.json("CronJobList")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.cronJobs(key: WorkspaceController.key(context))
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/cron/{id}", operationID: "getCronJob", summary: "One cron job", tag: "cron",
                parameters: [Schema.workspaceKey, jobID],
                replies: [.init(status: 200, description: "The job", body: Schema.json("CronJob")), notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.cronJob(key: WorkspaceController.key(context), id: context.pathParameter("id"))
        }
        registry.add(
            APIOperation(
                method: .patch, path: "/v1/workspaces/{key}/cron/{id}", operationID: "updateCronJob",
                summary: "Enable, disable or reschedule a cron job", tag: "cron", parameters: [Schema.workspaceKey, jobID],
                requestBody: Schema.json("CronJobPatch"),
                replies: [.init(status: 200, description: "The job as changed", body: Schema.json("CronJob")), notFound] + Schema.problemReplies)
        ) { request, context in
            let patch = try await request.decode(as: CronJobPatch.self, context: context)
            return try await manager.updateCronJob(key: WorkspaceController.key(context), id: context.pathParameter("id"), patch)
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/workspaces/{key}/cron/{id}", operationID: "deleteCronJob", summary: "Delete a cron job and its runs",
                tag: "cron", parameters: [Schema.workspaceKey, jobID],
                replies: [.init(status: 204, description: "Deleted"), notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.deleteCronJob(key: WorkspaceController.key(context), id: context.pathParameter("id"))
            return HTTPResponse.Status.noContent
        }
        registry.add(
            APIOperation(
                method: .post, path: "/v1/workspaces/{key}/cron/{id}/run", operationID: "runCronJob",
                summary: "Run a cron job now (its overlap policy holds); answers at once with the run", tag: "cron",
                parameters: [Schema.workspaceKey, jobID],
                replies: [.init(status: 202, description: "The run, started, queued or skipped", body: Schema.json("CronRun")), notFound]
                    + Schema.problemReplies)
        ) { _, context in
            EditedResponse(status: .accepted, response: try await manager.runCronJob(key: WorkspaceController.key(context), id: context.pathParameter("id")))
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/workspaces/{key}/cron/{id}/runs", operationID: "listCronRuns", summary: "A cron job's latest runs, newest first",
                tag: "cron",
                parameters: [
                    Schema.workspaceKey, jobID,
                    .init(
                        name: "limit", location: .query, schema: ["type": "integer", "minimum": 1, "maximum": 100],
                        description: "How many (default 20, at most the runs kept per job: 100 unless configured)", required: false),
                ],
                replies: [.init(status: 200, description: "The runs", body: Schema.json("CronRunList")), notFound] + Schema.problemReplies)
        ) { request, context in
            let limit = try request.uri.queryParameters.get("limit").map { try SessionController.integer($0, "limit") }
            return try await manager.cronRuns(
                key: WorkspaceController.key(context), id: context.pathParameter("id"), limit: limit.map(Int.init) ?? WorkspaceManager.cronRunPageDefault)
        }
    }
}

extension CronJob: ResponseEncodable {}
extension CronJobList: ResponseEncodable {}
extension CronRun: ResponseEncodable {}
extension CronRunList: ResponseEncodable {}
