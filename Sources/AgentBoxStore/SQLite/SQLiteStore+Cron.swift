import AgentBoxAPI
import Foundation
import GRDB

extension SQLiteStore {
    public func createCronJob(_ job: CronJobRecord) async throws {
        let row = try CronJobRow(job)
        try await write { db in try row.insert(db) }
    }

    public func cronJobs(of key: WorkspaceKey) async throws -> [CronJobRecord] {
        try await read { db in
            try CronJobRow.filter(Column("workspaceKey") == key.rawValue).order(Column("createdAt"), Column("id")).fetchAll(db).map { try $0.record() }
        }
    }

    public func cronJobCount(of key: WorkspaceKey) async throws -> Int {
        try await read { db in try CronJobRow.filter(Column("workspaceKey") == key.rawValue).fetchCount(db) }
    }

    public func cronJob(key: WorkspaceKey, id: String) async throws -> CronJobRecord? {
        try await read { db in try CronJobRow.fetchOne(db, key: ["workspaceKey": key.rawValue, "id": id])?.record() }
    }

    public func scheduledCronJobs() async throws -> [CronJobRecord] {
        try await read { db in
            try CronJobRow.filter(Column("nextRunAt") != nil).order(Column("nextRunAt"), Column("workspaceKey"), Column("id")).fetchAll(db)
                .map { try $0.record() }
        }
    }

    public func updateCronJob(_ job: CronJobRecord, reschedule: Bool) async throws -> Bool {
        let row = try CronJobRow(job)
        return try await write { db in
            try db.execute(
                sql: """
                    UPDATE cron_job SET schedule = ?, timezone = ?, overlap = ?, enabled = ?, nextRunAt = CASE WHEN ? THEN ? ELSE nextRunAt END
                    WHERE workspaceKey = ? AND id = ?
                    """,
                arguments: [row.schedule, row.timezone, row.overlap, row.enabled, reschedule, row.nextRunAt, row.workspaceKey, row.id])
            return db.changesCount == 1
        }
    }

    public func setCronJobSession(key: WorkspaceKey, id: String, sessionId: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "UPDATE cron_job SET sessionId = ? WHERE workspaceKey = ? AND id = ?", arguments: [sessionId, key.rawValue, id])
            return db.changesCount == 1
        }
    }

    public func deleteCronJob(key: WorkspaceKey, id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM cron_run WHERE workspaceKey = ? AND jobId = ?", arguments: [key.rawValue, id])
            return try CronJobRow.deleteOne(db, key: ["workspaceKey": key.rawValue, "id": id])
        }
    }

    public func claimCronSlot(key: WorkspaceKey, id: String, slot: Date?, next: Date?, run: CronRunRecord, retention: Int) async throws -> Bool {
        let runRow = try CronRunRow(run)
        let counted = run.run.status == .skipped ? 0 : 1
        return try await write { db in
            // The slot is compared to the microsecond, as times are kept.
            if let slot {
                try db.execute(
                    sql: """
                        UPDATE cron_job SET nextRunAt = ?, lastRunAt = ?, runCount = runCount + ?
                        WHERE workspaceKey = ? AND id = ? AND nextRunAt IS NOT NULL AND ABS(nextRunAt - ?) < 0.0000005
                        """,
                    arguments: [next?.timeIntervalSince1970, run.run.scheduledAt.timeIntervalSince1970, counted, key.rawValue, id, slot.timeIntervalSince1970])
            } else {
                try db.execute(
                    sql: "UPDATE cron_job SET lastRunAt = ?, runCount = runCount + ? WHERE workspaceKey = ? AND id = ?",
                    arguments: [run.run.scheduledAt.timeIntervalSince1970, counted, key.rawValue, id])
            }
            guard db.changesCount == 1 else { return false }
            try runRow.insert(db)
            try db.execute(
                sql: """
                    DELETE FROM cron_run WHERE workspaceKey = ? AND jobId = ? AND ordinal <= (
                        SELECT ordinal FROM cron_run WHERE workspaceKey = ? AND jobId = ? ORDER BY ordinal DESC LIMIT 1 OFFSET ?)
                    """,
                arguments: [key.rawValue, id, key.rawValue, id, max(retention, 1)])
            return true
        }
    }

    public func updateCronRun(_ record: CronRunRecord) async throws -> Bool {
        let row = try CronRunRow(record)
        return try await write { db in
            try db.execute(
                sql: "UPDATE cron_run SET status = ?, body = ? WHERE runId = ? AND workspaceKey = ? AND jobId = ?",
                arguments: [row.status, row.body, row.runId, row.workspaceKey, row.jobId])
            return db.changesCount == 1
        }
    }

    public func cronRuns(key: WorkspaceKey, jobId: String, limit: Int) async throws -> [CronRunRecord] {
        guard limit > 0 else { return [] }
        return try await read { db in
            try CronRunRow.filter(Column("workspaceKey") == key.rawValue && Column("jobId") == jobId).order(Column("ordinal").desc).limit(limit)
                .fetchAll(db).map { try $0.record() }
        }
    }

    public func cronRun(key: WorkspaceKey, jobId: String, runId: String) async throws -> CronRunRecord? {
        try await read { db in
            try CronRunRow.filter(Column("runId") == runId && Column("workspaceKey") == key.rawValue && Column("jobId") == jobId).fetchOne(db)?
                .record()
        }
    }

    public func interruptCronRuns(endedAt: Date, error: String) async throws -> [CronRunRecord] {
        try await write { db in
            let rows = try CronRunRow.filter(["queued", "running"].contains(Column("status"))).order(Column("ordinal")).fetchAll(db)
            return try rows.map { row in
                var record = try row.record()
                record.run.status = .error
                record.run.endedAt = endedAt
                record.run.error = error
                let updated = try CronRunRow(record)
                try db.execute(sql: "UPDATE cron_run SET status = ?, body = ? WHERE runId = ?", arguments: [updated.status, updated.body, updated.runId])
                return record
            }
        }
    }
}

/// The `cron_job` table; `action` is the action's JSON.
struct CronJobRow: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "cron_job"

    var workspaceKey: String
    var id: String
    var schedule: String
    var timezone: String
    var action: String
    var overlap: String
    var enabled: Bool
    var createdAt: Double
    var nextRunAt: Double?
    var lastRunAt: Double?
    var runCount: Int
    var sessionId: String?

    init(_ job: CronJobRecord) throws {
        workspaceKey = job.workspaceKey.rawValue
        id = job.id
        schedule = job.schedule
        timezone = job.timezone
        action = String(decoding: try JSONEncoder().encode(job.action), as: UTF8.self)
        overlap = job.overlap.rawValue
        enabled = job.enabled
        createdAt = job.createdAt.timeIntervalSince1970
        nextRunAt = job.nextRunAt?.timeIntervalSince1970
        lastRunAt = job.lastRunAt?.timeIntervalSince1970
        runCount = job.runCount
        sessionId = job.sessionId
    }

    func record() throws -> CronJobRecord {
        guard let key = WorkspaceKey(rawValue: workspaceKey), let overlap = CronOverlap(rawValue: overlap),
            let action = try? JSONDecoder().decode(CronAction.self, from: Data(action.utf8))
        else { throw StoreError(.corrupt, "stored cron job '\(id)' of workspace '\(workspaceKey)' cannot be read") }
        return CronJobRecord(
            workspaceKey: key, id: id, schedule: schedule, timezone: timezone, action: action, overlap: overlap, enabled: enabled,
            createdAt: Date(timeIntervalSince1970: createdAt), nextRunAt: nextRunAt.map(Date.init(timeIntervalSince1970:)),
            lastRunAt: lastRunAt.map(Date.init(timeIntervalSince1970:)), runCount: runCount, sessionId: sessionId)
    }
}

/// The `cron_run` table: the run's JSON in `body` (times as seconds since 1970, kept to the microsecond), with the
/// columns it is found and filtered by.
struct CronRunRow: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "cron_run"

    var ordinal: Int64?
    var runId: String
    var workspaceKey: String
    var jobId: String
    var status: String
    var body: String

    init(_ record: CronRunRecord) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        runId = record.run.runId
        workspaceKey = record.workspaceKey.rawValue
        jobId = record.run.jobId
        status = record.run.status.rawValue
        body = String(decoding: try encoder.encode(record.run), as: UTF8.self)
    }

    func record() throws -> CronRunRecord {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        guard let key = WorkspaceKey(rawValue: workspaceKey), let run = try? decoder.decode(CronRun.self, from: Data(body.utf8)) else {
            throw StoreError(.corrupt, "stored cron run '\(runId)' cannot be read")
        }
        return CronRunRecord(workspaceKey: key, run: run)
    }
}
