import AgentBoxAPI
import Foundation
import GRDB

extension SQLiteStore {
    public func createAccessToken(_ token: AccessTokenRecord) async throws {
        let workspaces = String(decoding: try JSONEncoder().encode(token.workspaces), as: UTF8.self)
        try await write { db in
            try db.execute(
                sql: "INSERT INTO api_token (id, hash, role, workspaces, label, createdAt, expiresAt, parentId) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    token.id, token.hash, token.role.rawValue, workspaces, token.label, token.createdAt.timeIntervalSince1970,
                    token.expiresAt?.timeIntervalSince1970, token.parentId,
                ])
        }
    }

    public func accessTokens() async throws -> [AccessTokenRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM api_token ORDER BY createdAt, id").map(Self.decodeAccessToken)
        }
    }

    public func accessToken(hash: String) async throws -> AccessTokenRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_token WHERE hash = ?", arguments: [hash]).map(Self.decodeAccessToken)
        }
    }

    public func deleteAccessToken(id: String) async throws -> [AccessTokenRecord] {
        try await write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM api_token WHERE id = ?", arguments: [id]) else { return [] }
            // Tokens made from tokens made from it go too (a login's token cannot make another, but the walk does not rely on it).
            var deleted = [try Self.decodeAccessToken(row)]
            var frontier = [id]
            while let parent = frontier.popLast(), deleted.count < 100_000 {
                let children = try Row.fetchAll(db, sql: "SELECT * FROM api_token WHERE parentId = ?", arguments: [parent]).map(Self.decodeAccessToken)
                deleted += children
                frontier += children.map(\.id)
            }
            for token in deleted { try db.execute(sql: "DELETE FROM api_token WHERE id = ?", arguments: [token.id]) }
            return deleted
        }
    }

    private static func decodeAccessToken(_ row: Row) throws -> AccessTokenRecord {
        let text: String = row["workspaces"]
        let roleName: String = row["role"]
        guard let role = TokenRole(rawValue: roleName), let workspaces = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
            throw StoreError(.corrupt, "stored token \(row["id"] as String? ?? "?") cannot be read")
        }
        let expires: Double? = row["expiresAt"]
        return AccessTokenRecord(
            id: row["id"], hash: row["hash"], role: role, workspaces: workspaces, label: row["label"],
            createdAt: Date(timeIntervalSince1970: row["createdAt"]), expiresAt: expires.map { Date(timeIntervalSince1970: $0) },
            parentId: row["parentId"])
    }
}
