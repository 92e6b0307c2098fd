import AgentBoxAPI
import Foundation
import PostgresNIO

extension PostgresStore {
    public func createCronJob(_ job: CronJobRecord) async throws {
        let action = try RecordJSON.encode(job.action)
        try await write(fence: .workspace(job.workspaceKey)) { connection in
            try await connection.run(
                """
                INSERT INTO cron_job (workspace_key, id, schedule, timezone, action, overlap, enabled, created_at, next_run_at, last_run_at,
                    run_count, session_id)
                VALUES (\(job.workspaceKey.rawValue), \(job.id), \(job.schedule), \(job.timezone), \(action), \(job.overlap.rawValue), \(job.enabled),
                    \(PostgresTime(job.createdAt)), \(job.nextRunAt.map(PostgresTime.init))::timestamptz,
                    \(job.lastRunAt.map(PostgresTime.init))::timestamptz, \(Int64(job.runCount)), \(job.sessionId)::text)
                """)
        }
    }

    public func cronJobs(of key: WorkspaceKey) async throws -> [CronJobRecord] {
        try await read { connection in
            try await connection.rows(
                "SELECT \(unescaped: Self.cronJobColumns) FROM cron_job WHERE workspace_key = \(key.rawValue) ORDER BY created_at, id"
            ).map(Self.decodeCronJob)
        }
    }

    public func cronJobCount(of key: WorkspaceKey) async throws -> Int {
        try await read { connection in
            Int(try await connection.rows("SELECT count(*) FROM cron_job WHERE workspace_key = \(key.rawValue)").first?.decode(Int64.self) ?? 0)
        }
    }

    public func cronJob(key: WorkspaceKey, id: String) async throws -> CronJobRecord? {
        try await read { connection in
            try await connection.rows(
                "SELECT \(unescaped: Self.cronJobColumns) FROM cron_job WHERE workspace_key = \(key.rawValue) AND id = \(id)"
            ).first.map(Self.decodeCronJob)
        }
    }

    public func scheduledCronJobs() async throws -> [CronJobRecord] {
        try await read { connection in
            try await connection.rows(
                "SELECT \(unescaped: Self.cronJobColumns) FROM cron_job WHERE next_run_at IS NOT NULL ORDER BY next_run_at, workspace_key, id"
            ).map(Self.decodeCronJob)
        }
    }

    public func updateCronJob(_ job: CronJobRecord, reschedule: Bool) async throws -> Bool {
        try await write(fence: .workspace(job.workspaceKey)) { connection in
            try await !connection.rows(
                """
                UPDATE cron_job SET schedule = \(job.schedule), timezone = \(job.timezone), overlap = \(job.overlap.rawValue), enabled = \(job.enabled),
                    next_run_at = CASE WHEN \(reschedule) THEN \(job.nextRunAt.map(PostgresTime.init))::timestamptz ELSE next_run_at END
                WHERE workspace_key = \(job.workspaceKey.rawValue) AND id = \(job.id) RETURNING 1
                """
            ).isEmpty
        }
    }

    public func setCronJobSession(key: WorkspaceKey, id: String, sessionId: String) async throws -> Bool {
        try await write(fence: .workspace(key)) { connection in
            try await !connection.rows(
                "UPDATE cron_job SET session_id = \(sessionId) WHERE workspace_key = \(key.rawValue) AND id = \(id) RETURNING 1"
            ).isEmpty
        }
    }

    public func deleteCronJob(key: WorkspaceKey, id: String) async throws -> Bool {
        try await write(fence: .workspace(key)) { connection in
            try await !connection.rows(
                """
                WITH runs AS (DELETE FROM cron_run WHERE workspace_key = \(key.rawValue) AND job_id = \(id))
                DELETE FROM cron_job WHERE workspace_key = \(key.rawValue) AND id = \(id) RETURNING 1
                """
            ).isEmpty
        }
    }

    public func claimCronSlot(key: WorkspaceKey, id: String, slot: Date?, next: Date?, run: CronRunRecord, retention: Int) async throws -> Bool {
        let body = try RecordJSON.encode(run.run)
        let counted: Int64 = run.run.status == .skipped ? 0 : 1
        let scheduled = PostgresTime(run.run.scheduledAt)
        // One statement, all or nothing: the job's update (only while its slot is `slot`: concurrent claims wait on
        // the job's row and then find it moved), the run's insert (a taken run id undoes the update), and the pruning
        // of the runs past the retention (among the older ones, which the statement's snapshot shows: the new one is
        // kept besides).
        // Without a slot (a run asked for by hand) the job's `nextRunAt` is neither compared nor changed.
        let query: PostgresQuery = """
            WITH job AS (
                UPDATE cron_job SET next_run_at = CASE WHEN \(slot != nil) THEN \(next.map(PostgresTime.init))::timestamptz ELSE next_run_at END,
                    last_run_at = \(scheduled), run_count = run_count + \(counted)
                WHERE workspace_key = \(key.rawValue) AND id = \(id) AND (\(slot == nil) OR next_run_at = \(slot.map(PostgresTime.init))::timestamptz)
                RETURNING 1
            ),
            inserted AS (
                INSERT INTO cron_run (run_id, workspace_key, job_id, status, body)
                SELECT \(run.run.runId)::text, \(key.rawValue)::text, \(run.run.jobId)::text, \(run.run.status.rawValue)::text, \(body)::text FROM job
                RETURNING 1
            ),
            pruned AS (
                DELETE FROM cron_run WHERE workspace_key = \(key.rawValue) AND job_id = \(id) AND EXISTS (SELECT 1 FROM job)
                    AND ordinal <= (
                        SELECT ordinal FROM cron_run WHERE workspace_key = \(key.rawValue) AND job_id = \(id)
                        ORDER BY ordinal DESC OFFSET \(Int64(max(retention, 1) - 1)) LIMIT 1)
            )
            SELECT count(*) FROM inserted
            """
        return try await write(fence: .workspace(key)) { connection in
            try await connection.rows(query).first?.decode(Int64.self) == 1
        }
    }

    public func updateCronRun(_ record: CronRunRecord) async throws -> Bool {
        let body = try RecordJSON.encode(record.run)
        return try await write(fence: .workspace(record.workspaceKey)) { connection in
            try await !connection.rows(
                """
                UPDATE cron_run SET status = \(record.run.status.rawValue), body = \(body)
                WHERE run_id = \(record.run.runId) AND workspace_key = \(record.workspaceKey.rawValue) AND job_id = \(record.run.jobId)
                RETURNING 1
                """
            ).isEmpty
        }
    }

    public func cronRuns(key: WorkspaceKey, jobId: String, limit: Int) async throws -> [CronRunRecord] {
        try checkOpen()
        guard limit > 0 else { return [] }
        return try await read { connection in
            try await connection.rows(
                """
                SELECT run_id, workspace_key, body FROM cron_run WHERE workspace_key = \(key.rawValue) AND job_id = \(jobId)
                ORDER BY ordinal DESC LIMIT \(Int64(limit))
                """
            ).map(Self.decodeCronRun)
        }
    }

    public func cronRun(key: WorkspaceKey, jobId: String, runId: String) async throws -> CronRunRecord? {
        try await read { connection in
            try await connection.rows(
                "SELECT run_id, workspace_key, body FROM cron_run WHERE run_id = \(runId) AND workspace_key = \(key.rawValue) AND job_id = \(jobId)"
            ).first.map(Self.decodeCronRun)
        }
    }

    public func interruptCronRuns(endedAt: Date, error: String) async throws -> [CronRunRecord] {
        // Not one workspace's write, so not fenced; but in a cluster the runs of a workspace that some node holds a
        // live lease on are that node's, and left alone (a single node has no leases: every unfinished run ends).
        try await write(fence: .none, atomic: true) { connection in
            let rows = try await connection.rows(
                """
                SELECT run_id, workspace_key, body FROM cron_run
                WHERE status IN ('queued', 'running') AND NOT EXISTS (
                    SELECT 1 FROM lease WHERE lease.key = cron_run.workspace_key AND lease.node_id IS NOT NULL AND lease.expires_at > clock_timestamp())
                ORDER BY ordinal FOR UPDATE
                """)
            var records: [CronRunRecord] = []
            for row in rows {
                var record = try Self.decodeCronRun(row)
                record.run.status = .error
                record.run.endedAt = endedAt
                record.run.error = error
                records.append(record)
            }
            guard !records.isEmpty else { return [] }
            let ids = records.map(\.run.runId)
            let bodies = try records.map { try RecordJSON.encode($0.run) }
            try await connection.run(
                """
                UPDATE cron_run SET status = 'error', body = interrupted.body
                FROM unnest(\(ids)::text[], \(bodies)::text[]) AS interrupted(run_id, body) WHERE cron_run.run_id = interrupted.run_id
                """)
            return records
        }
    }

    static let cronJobColumns =
        "workspace_key, id, schedule, timezone, action, overlap, enabled, created_at, next_run_at, last_run_at, run_count, session_id"

    static func decodeCronJob(_ row: PostgresRow) throws -> CronJobRecord {
        let (key, id, schedule, timezone, actionText, overlapName, enabled, createdAt, nextRunAt, lastRunAt, runCount, sessionId) = try row.decode(
            (String, String, String, String, String, String, Bool, PostgresTime, PostgresTime?, PostgresTime?, Int64, String?).self)
        guard let workspaceKey = WorkspaceKey(rawValue: key), let overlap = CronOverlap(rawValue: overlapName),
            let action = RecordJSON.cronAction(actionText)
        else { throw StoreError(.corrupt, "stored cron job '\(id)' of workspace '\(key)' cannot be read") }
        return CronJobRecord(
            workspaceKey: workspaceKey, id: id, schedule: schedule, timezone: timezone, action: action, overlap: overlap, enabled: enabled,
            createdAt: createdAt.date, nextRunAt: nextRunAt?.date, lastRunAt: lastRunAt?.date, runCount: Int(runCount), sessionId: sessionId)
    }

    static func decodeCronRun(_ row: PostgresRow) throws -> CronRunRecord {
        let (runId, key, body) = try row.decode((String, String, String).self)
        guard let workspaceKey = WorkspaceKey(rawValue: key), let run = RecordJSON.cronRun(body) else {
            throw StoreError(.corrupt, "stored cron run '\(runId)' cannot be read")
        }
        return CronRunRecord(workspaceKey: workspaceKey, run: run)
    }
}
