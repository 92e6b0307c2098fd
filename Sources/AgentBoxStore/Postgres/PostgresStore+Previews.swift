import AgentBoxAPI
import Foundation
import PostgresNIO

extension PostgresStore {
    public func createPreview(_ record: PreviewRecord) async throws {
        try await write(fence: .workspace(record.workspaceKey)) { connection in
            // One statement: a taken token hash undoes the removal of the expired ones too.
            try await connection.run(
                """
                WITH expired AS (
                    DELETE FROM preview WHERE workspace_key = \(record.workspaceKey.rawValue) AND expires_at <= \(PostgresTime(record.createdAt))
                )
                INSERT INTO preview (token_hash, workspace_key, port, created_at, expires_at)
                VALUES (\(record.tokenHash), \(record.workspaceKey.rawValue), \(Int64(record.port)), \(PostgresTime(record.createdAt)),
                    \(PostgresTime(record.expiresAt)))
                """)
        }
    }

    public func previews(of key: WorkspaceKey, now: Date) async throws -> [PreviewRecord] {
        try await read { connection in
            try await connection.rows(
                """
                SELECT \(unescaped: Self.previewColumns) FROM preview WHERE workspace_key = \(key.rawValue) AND expires_at > \(PostgresTime(now))
                ORDER BY created_at, token_hash
                """
            ).map(Self.decodePreview)
        }
    }

    public func preview(tokenHash: String) async throws -> PreviewRecord? {
        try await read { connection in
            try await connection.rows("SELECT \(unescaped: Self.previewColumns) FROM preview WHERE token_hash = \(tokenHash)").first.map(Self.decodePreview)
        }
    }

    public func deletePreview(tokenHash: String, of key: WorkspaceKey) async throws -> Bool {
        try await write(fence: .workspace(key)) { connection in
            try await !connection.rows("DELETE FROM preview WHERE token_hash = \(tokenHash) AND workspace_key = \(key.rawValue) RETURNING 1").isEmpty
        }
    }

    static let previewColumns = "token_hash, workspace_key, port, created_at, expires_at"

    static func decodePreview(_ row: PostgresRow) throws -> PreviewRecord {
        let (tokenHash, key, port, createdAt, expiresAt) = try row.decode((String, String, Int64, PostgresTime, PostgresTime).self)
        guard let workspaceKey = WorkspaceKey(rawValue: key) else { throw StoreError(.corrupt, "stored preview key '\(key)' is not valid") }
        return PreviewRecord(tokenHash: tokenHash, workspaceKey: workspaceKey, port: Int(port), createdAt: createdAt.date, expiresAt: expiresAt.date)
    }
}
