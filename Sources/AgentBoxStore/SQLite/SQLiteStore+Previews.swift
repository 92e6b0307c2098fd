import AgentBoxAPI
import Foundation
import GRDB

extension SQLiteStore {
    public func createPreview(_ record: PreviewRecord) async throws {
        let row = PreviewRow(record)
        try await write { db in
            try PreviewRow.filter(Column("workspaceKey") == row.workspaceKey && Column("expiresAt") <= row.createdAt).deleteAll(db)
            try row.insert(db)
        }
    }

    public func previews(of key: WorkspaceKey, now: Date) async throws -> [PreviewRecord] {
        try await read { db in
            try PreviewRow.filter(Column("workspaceKey") == key.rawValue && Column("expiresAt") > now.timeIntervalSince1970)
                .order(Column("createdAt"), Column("token")).fetchAll(db).map { try $0.record() }
        }
    }

    public func preview(tokenHash: String) async throws -> PreviewRecord? {
        try await read { db in try PreviewRow.fetchOne(db, key: tokenHash)?.record() }
    }

    public func deletePreview(tokenHash: String, of key: WorkspaceKey) async throws -> Bool {
        try await write { db in
            try PreviewRow.filter(Column("token") == tokenHash && Column("workspaceKey") == key.rawValue).deleteAll(db) > 0
        }
    }
}
