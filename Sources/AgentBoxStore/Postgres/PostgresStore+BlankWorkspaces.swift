import AgentBoxAPI
import Foundation
import PostgresNIO

extension PostgresStore {
    public func createBlankWorkspace(id: String, at date: Date) async throws -> Int {
        try await write(fence: .none) { connection in
            // One statement: the id is checked against the workspaces and inserted together (the primary key refuses
            // a second blank with it).
            let rows = try await connection.rows(
                """
                INSERT INTO blank_workspace (id, sandbox_number, created_at)
                SELECT \(id), nextval('sandbox_number'), \(PostgresTime(date))
                WHERE NOT EXISTS (SELECT 1 FROM workspace WHERE id = \(id))
                ON CONFLICT (id) DO NOTHING
                RETURNING sandbox_number
                """)
            guard let row = rows.first else { throw StoreError(.conflict, "id '\(id)' is taken") }
            return Int(try row.decode(Int64.self))
        }
    }

    public func blankWorkspaces() async throws -> [BlankWorkspaceRecord] {
        try await read { connection in
            try await connection.rows("SELECT id, sandbox_number, created_at FROM blank_workspace ORDER BY created_at, id").map { row in
                let (id, number, createdAt) = try row.decode((String, Int64, PostgresTime).self)
                return BlankWorkspaceRecord(id: id, sandboxNumber: Int(number), createdAt: createdAt.date)
            }
        }
    }

    public func claimBlankWorkspace(_ blankID: String, as record: WorkspaceRecord, eventSequenceBound: Int64) async throws
        -> (record: WorkspaceRecord, created: Bool)?
    {
        guard eventSequenceBound >= 0 else { throw StoreError(.invalidArgument, "an event-sequence bound is at least 0, not \(eventSequenceBound)") }
        let config = try RecordJSON.encode(record.config)
        do {
            return try await claim(blankID, as: record, config: config, eventSequenceBound: eventSequenceBound)
        } catch let error as StoreError where error.code == .conflict {
            // A create of the key committed between this transaction's check and its insert (rolled back: the blank
            // stays): the stored workspace is the answer, as for createWorkspace.
            guard let existing = try await workspace(key: record.key) else { throw error }
            return (existing, false)
        }
    }

    private func claim(_ blankID: String, as record: WorkspaceRecord, config: String, eventSequenceBound: Int64) async throws
        -> (record: WorkspaceRecord, created: Bool)?
    {
        try await write(fence: .workspace(record.key), atomic: true) { connection in
            if let row = try await connection.rows("SELECT \(unescaped: Self.workspaceColumns) FROM workspace WHERE key = \(record.key.rawValue)").first {
                return (try Self.decodeWorkspace(row), false)
            }
            // The blank is taken and the workspace made in one statement: a concurrent claim of the blank deletes
            // nothing and inserts nothing; a concurrent create of the key makes the insert fail (a conflict).
            let rows = try await connection.rows(
                """
                WITH taken AS (DELETE FROM blank_workspace WHERE id = \(blankID) RETURNING id, sandbox_number)
                INSERT INTO workspace (key, id, config, created_at, last_active_at, event_seq_bound, sandbox_number)
                SELECT \(record.key.rawValue), id, \(config), \(PostgresTime(record.createdAt)), \(PostgresTime(record.lastActiveAt)),
                    \(eventSequenceBound), sandbox_number
                FROM taken
                RETURNING \(unescaped: Self.workspaceColumns)
                """)
            guard let row = rows.first else { return nil }
            return (try Self.decodeWorkspace(row), true)
        }
    }

    public func deleteBlankWorkspace(id: String) async throws -> Bool {
        try await write(fence: .none) { connection in
            try await !connection.rows("DELETE FROM blank_workspace WHERE id = \(id) RETURNING 1").isEmpty
        }
    }
}
