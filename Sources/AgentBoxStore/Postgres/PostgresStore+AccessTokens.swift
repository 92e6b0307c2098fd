import AgentBoxAPI
import PostgresNIO

extension PostgresStore {
    public func createAccessToken(_ token: AccessTokenRecord) async throws {
        try await write(fence: .none) { connection in
            try await connection.run(
                """
                INSERT INTO api_token (id, hash, role, workspaces, label, created_at, expires_at, parent_id)
                VALUES (\(token.id), \(token.hash), \(token.role.rawValue), \(token.workspaces), \(token.label)::text, \(PostgresTime(token.createdAt)),
                    \(token.expiresAt.map(PostgresTime.init))::timestamptz, \(token.parentId)::text)
                """)
        }
    }

    public func accessTokens() async throws -> [AccessTokenRecord] {
        try await read { connection in
            try await connection.rows("SELECT \(unescaped: Self.tokenColumns) FROM api_token ORDER BY created_at, id").map(Self.decodeAccessToken)
        }
    }

    public func accessToken(hash: String) async throws -> AccessTokenRecord? {
        try await read { connection in
            try await connection.rows("SELECT \(unescaped: Self.tokenColumns) FROM api_token WHERE hash = \(hash)").first.map(Self.decodeAccessToken)
        }
    }

    public func deleteAccessToken(id: String) async throws -> [AccessTokenRecord] {
        // The token and every token made from it, however deep, in one statement (UNION stops at a cycle).
        try await write(fence: .none) { connection in
            let deleted = try await connection.rows(
                """
                WITH RECURSIVE tree (id) AS (
                    SELECT id FROM api_token WHERE id = \(id)
                    UNION SELECT child.id FROM api_token child JOIN tree ON child.parent_id = tree.id
                )
                DELETE FROM api_token WHERE id IN (SELECT id FROM tree) RETURNING \(unescaped: Self.tokenColumns)
                """
            ).map(Self.decodeAccessToken)
            let others = deleted.filter { $0.id != id }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            return deleted.filter { $0.id == id } + others
        }
    }

    static let tokenColumns = "id, hash, role, workspaces, label, created_at, expires_at, parent_id"

    static func decodeAccessToken(_ row: PostgresRow) throws -> AccessTokenRecord {
        let (id, hash, roleName, workspaces, label, createdAt, expiresAt, parentId) = try row.decode(
            (String, String, String, [String], String?, PostgresTime, PostgresTime?, String?).self)
        guard let role = TokenRole(rawValue: roleName) else { throw StoreError(.corrupt, "stored token \(id) cannot be read") }
        return AccessTokenRecord(
            id: id, hash: hash, role: role, workspaces: workspaces, label: label, createdAt: createdAt.date, expiresAt: expiresAt?.date,
            parentId: parentId)
    }
}
