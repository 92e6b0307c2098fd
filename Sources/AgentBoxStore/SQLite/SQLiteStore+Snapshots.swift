import AgentBoxAPI
import GRDB

extension SQLiteStore {
    public func createSnapshot(_ snapshot: SnapshotRecord) async throws {
        let row = try SnapshotRow(snapshot)
        try await write { db in try row.insert(db) }
    }

    public func snapshots(of key: WorkspaceKey) async throws -> [SnapshotRecord] {
        try await read { db in
            try SnapshotRow.filter(Column("workspaceKey") == key.rawValue).order(Column("createdAt"), Column("id")).fetchAll(db)
                .map { try $0.record() }
        }
    }

    public func snapshot(id: String) async throws -> SnapshotRecord? {
        try await read { db in try SnapshotRow.fetchOne(db, key: id)?.record() }
    }

    public func deleteSnapshot(id: String) async throws -> Bool {
        try await write { db in try SnapshotRow.deleteOne(db, key: id) }
    }
}
