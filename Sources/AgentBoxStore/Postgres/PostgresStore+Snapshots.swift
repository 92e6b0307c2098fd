import AgentBoxAPI
import PostgresNIO

extension PostgresStore {
    public func createSnapshot(_ snapshot: SnapshotRecord) async throws {
        let config = try RecordJSON.encode(snapshot.config)
        try await write(fence: .workspace(snapshot.workspaceKey)) { connection in
            try await connection.run(
                """
                INSERT INTO snapshot (id, workspace_key, config, created_at, size_bytes)
                VALUES (\(snapshot.id), \(snapshot.workspaceKey.rawValue), \(config), \(PostgresTime(snapshot.createdAt)), \(snapshot.sizeBytes))
                """)
        }
    }

    public func snapshots(of key: WorkspaceKey) async throws -> [SnapshotRecord] {
        try await read { connection in
            try await connection.rows(
                "SELECT \(unescaped: Self.snapshotColumns) FROM snapshot WHERE workspace_key = \(key.rawValue) ORDER BY created_at, id"
            ).map(Self.decodeSnapshot)
        }
    }

    public func snapshot(id: String) async throws -> SnapshotRecord? {
        try await read { connection in
            try await connection.rows("SELECT \(unescaped: Self.snapshotColumns) FROM snapshot WHERE id = \(id)").first.map(Self.decodeSnapshot)
        }
    }

    public func deleteSnapshot(id: String) async throws -> Bool {
        try await write(fence: .snapshot(id)) { connection in
            try await !connection.rows("DELETE FROM snapshot WHERE id = \(id) RETURNING 1").isEmpty
        }
    }

    static let snapshotColumns = "id, workspace_key, config, created_at, size_bytes"

    static func decodeSnapshot(_ row: PostgresRow) throws -> SnapshotRecord {
        let (id, key, config, createdAt, sizeBytes) = try row.decode((String, String, String, PostgresTime, Int64).self)
        guard let workspaceKey = WorkspaceKey(rawValue: key) else { throw StoreError(.corrupt, "stored snapshot key '\(key)' is not valid") }
        return SnapshotRecord(
            id: id, workspaceKey: workspaceKey, config: try RecordJSON.config(config, of: "snapshot '\(id)'"), createdAt: createdAt.date,
            sizeBytes: sizeBytes)
    }
}
