import AgentBoxAPI
import NIOHTTP1

/// Cron jobs of a workspace: commands and agent prompts on a schedule, and their runs.
extension AgentBoxClient {
    /// Schedules a job in the workspace.
    ///
    /// ```swift
    /// let job = try await client.createCronJob(
    ///     "demo", CronJobRequest(schedule: "*/5 * * * *", action: .exec(CronExecAction(command: "date >> /workspace/ticks"))))
    /// let runs = try await client.cronRuns("demo", job.id)
    /// ```
    public func createCronJob(_ key: String, _ request: CronJobRequest) async throws -> CronJob {
        try await send(.POST, Self.workspacePath(key) + "/cron", json: request)
    }

    /// The workspace's jobs, oldest first.
    public func cronJobs(_ key: String) async throws -> CronJobList {
        try await send(.GET, Self.workspacePath(key) + "/cron")
    }

    /// One job.
    public func cronJob(_ key: String, _ id: String) async throws -> CronJob {
        try await send(.GET, Self.cronPath(key, id))
    }

    /// Enables, disables or reschedules a job.
    public func updateCronJob(_ key: String, _ id: String, _ patch: CronJobPatch) async throws -> CronJob {
        try await send(.PATCH, Self.cronPath(key, id), json: patch)
    }

    /// Deletes a job and its runs.
    public func deleteCronJob(_ key: String, _ id: String) async throws {
        _ = try await perform(.DELETE, Self.cronPath(key, id))
    }

    /// Runs a job now; answers with the run as it starts (or is queued or skipped, by the job's overlap policy).
    public func runCronJob(_ key: String, _ id: String) async throws -> CronRun {
        try await send(.POST, Self.cronPath(key, id) + "/run")
    }

    /// The job's latest runs, newest first.
    public func cronRuns(_ key: String, _ id: String, limit: Int? = nil) async throws -> CronRunList {
        try await send(.GET, Self.cronPath(key, id) + "/runs", query: limit.map { [("limit", String($0))] } ?? [])
    }

    static func cronPath(_ key: String, _ id: String) -> String {
        workspacePath(key) + "/cron/" + segment(id)
    }
}
