import AgentBoxAPI
import Foundation
import PostgresNIO

extension PostgresStore {
    public func createWorkspace(_ record: WorkspaceRecord) async throws -> (record: WorkspaceRecord, created: Bool) {
        let config = try RecordJSON.encode(record.config)
        return try await write(fence: .workspace(record.key)) { connection in
            // Insert-or-nothing, then read what won: a concurrent create of the key either inserted before (and this
            // finds its row) or waits on it. A workspace deleted between the two statements is tried again.
            for _ in 0..<8 {
                let inserted = try await connection.rows(
                    """
                    INSERT INTO workspace (key, id, config, created_at, last_active_at, sandbox_number)
                    VALUES (\(record.key.rawValue), \(record.id), \(config), \(PostgresTime(record.createdAt)), \(PostgresTime(record.lastActiveAt)),
                        nextval('sandbox_number'))
                    ON CONFLICT (key) DO NOTHING
                    RETURNING \(unescaped: Self.workspaceColumns)
                    """)
                if let row = inserted.first { return (try Self.decodeWorkspace(row), true) }
                let existing = try await connection.rows("SELECT \(unescaped: Self.workspaceColumns) FROM workspace WHERE key = \(record.key.rawValue)")
                if let row = existing.first { return (try Self.decodeWorkspace(row), false) }
            }
            throw StoreError(.conflict, "workspace '\(record.key)' kept being created and deleted while this call made it")
        }
    }

    public func workspace(key: WorkspaceKey) async throws -> WorkspaceRecord? {
        try await read { connection in
            try await connection.rows("SELECT \(unescaped: Self.workspaceColumns) FROM workspace WHERE key = \(key.rawValue)").first.map(Self.decodeWorkspace)
        }
    }

    public func workspaces(after: WorkspaceKey?, limit: Int) async throws -> [WorkspaceRecord] {
        try checkOpen()
        guard limit > 0 else { return [] }
        // The column's collation is "C": byte order, as the contract asks.
        return try await read { connection in
            let rows: [PostgresRow]
            if let after {
                rows = try await connection.rows(
                    "SELECT \(unescaped: Self.workspaceColumns) FROM workspace WHERE key > \(after.rawValue) ORDER BY key LIMIT \(Int64(limit))")
            } else {
                rows = try await connection.rows("SELECT \(unescaped: Self.workspaceColumns) FROM workspace ORDER BY key LIMIT \(Int64(limit))")
            }
            return try rows.map(Self.decodeWorkspace)
        }
    }

    public func updateWorkspaceConfig(key: WorkspaceKey, config: WorkspaceConfig) async throws -> Bool {
        let text = try RecordJSON.encode(config)
        return try await write(fence: .workspace(key)) { connection in
            try await !connection.rows("UPDATE workspace SET config = \(text) WHERE key = \(key.rawValue) RETURNING 1").isEmpty
        }
    }

    public func deleteWorkspace(key: WorkspaceKey) async throws -> Bool {
        // One statement: its parts see one snapshot (the sessions whose events go are those it deletes) and happen
        // together.
        try await write(fence: .workspace(key)) { connection in
            let key = key.rawValue
            return try await !connection.rows(
                """
                WITH snapshots AS (DELETE FROM snapshot WHERE workspace_key = \(key)),
                    previews AS (DELETE FROM preview WHERE workspace_key = \(key)),
                    events AS (DELETE FROM session_event WHERE session_id IN (SELECT id FROM session WHERE workspace_key = \(key))),
                    sessions AS (DELETE FROM session WHERE workspace_key = \(key)),
                    runs AS (DELETE FROM cron_run WHERE workspace_key = \(key)),
                    jobs AS (DELETE FROM cron_job WHERE workspace_key = \(key)),
                    calls AS (DELETE FROM tool_call WHERE workspace_key = \(key)),
                    usage AS (DELETE FROM llm_usage WHERE workspace_key = \(key))
                DELETE FROM workspace WHERE key = \(key) RETURNING 1
                """
            ).isEmpty
        }
    }

    public func touchWorkspace(key: WorkspaceKey, at date: Date) async throws {
        try await write(fence: .workspace(key)) { connection in
            try await connection.run(
                "UPDATE workspace SET last_active_at = GREATEST(last_active_at, \(PostgresTime(date))) WHERE key = \(key.rawValue)")
        }
    }

    public func reserveEventSequence(key: WorkspaceKey, count: Int64) async throws -> Int64 {
        guard count >= 1 else { throw StoreError(.invalidArgument, "cannot reserve \(count) event numbers: reserve at least 1") }
        return try await write(fence: .workspace(key)) { connection in
            let rows = try await connection.rows(
                "UPDATE workspace SET event_seq_bound = event_seq_bound + \(count) WHERE key = \(key.rawValue) RETURNING event_seq_bound")
            guard let row = rows.first else { throw StoreError(.notFound, "no workspace '\(key)'") }
            return try row.decode(Int64.self)
        }
    }

    public func eventSequenceBound(key: WorkspaceKey) async throws -> Int64 {
        try await read { connection in
            guard let row = try await connection.rows("SELECT event_seq_bound FROM workspace WHERE key = \(key.rawValue)").first else {
                throw StoreError(.notFound, "no workspace '\(key)'")
            }
            return try row.decode(Int64.self)
        }
    }

    static let workspaceColumns = "key, id, config, created_at, last_active_at, sandbox_number"

    static func decodeWorkspace(_ row: PostgresRow) throws -> WorkspaceRecord {
        let (key, id, config, createdAt, lastActiveAt, sandboxNumber) = try row.decode((String, String, String, PostgresTime, PostgresTime, Int64).self)
        guard let workspaceKey = WorkspaceKey(rawValue: key) else { throw StoreError(.corrupt, "stored workspace key '\(key)' is not valid") }
        return WorkspaceRecord(
            id: id, key: workspaceKey, config: try RecordJSON.config(config, of: "workspace '\(key)'"), createdAt: createdAt.date,
            lastActiveAt: lastActiveAt.date, sandboxNumber: Int(sandboxNumber))
    }
}
