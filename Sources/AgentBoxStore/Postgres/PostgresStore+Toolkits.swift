import AgentBoxAPI
import Foundation
import PostgresNIO

extension PostgresStore {
    public func putToolkit(_ toolkit: Toolkit) async throws -> Bool {
        let body = try RecordJSON.encodeBody(of: toolkit)
        return try await write(fence: .none) { connection in
            // `xmax = 0` only on a row this statement inserted (an updated row carries the updating transaction's id).
            try await connection.rows(
                """
                INSERT INTO toolkit (name, body, created_at, updated_at)
                VALUES (\(toolkit.name), \(body), \(PostgresTime(toolkit.createdAt)), \(PostgresTime(toolkit.updatedAt)))
                ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at
                RETURNING (xmax = 0)
                """
            ).first?.decode(Bool.self) ?? false
        }
    }

    public func toolkits() async throws -> [Toolkit] {
        try await read { connection in
            try await connection.rows("SELECT name, body, created_at, updated_at FROM toolkit ORDER BY name").map(Self.decodeToolkit)
        }
    }

    public func toolkit(name: String) async throws -> Toolkit? {
        try await read { connection in
            try await connection.rows("SELECT name, body, created_at, updated_at FROM toolkit WHERE name = \(name)").first.map(Self.decodeToolkit)
        }
    }

    public func deleteToolkit(name: String) async throws -> Bool {
        try await write(fence: .none) { connection in
            try await !connection.rows("DELETE FROM toolkit WHERE name = \(name) RETURNING 1").isEmpty
        }
    }

    @discardableResult
    public func appendToolCall(_ call: ToolCall, of key: WorkspaceKey, retention: Int) async throws -> Int64 {
        let body = try RecordJSON.encode(call)
        // One statement: the prune sees the calls before this one (its snapshot), so it keeps `retention - 1` of them.
        return try await write(fence: .workspace(key)) { connection in
            guard
                let row = try await connection.rows(
                    """
                    WITH inserted AS (INSERT INTO tool_call (workspace_key, body) VALUES (\(key.rawValue), \(body)) RETURNING seq),
                        pruned AS (
                            DELETE FROM tool_call WHERE workspace_key = \(key.rawValue) AND seq <= (
                                SELECT seq FROM tool_call WHERE workspace_key = \(key.rawValue)
                                ORDER BY seq DESC OFFSET \(Int64(max(retention, 1) - 1)) LIMIT 1)
                        )
                    SELECT seq FROM inserted
                    """
                ).first
            else { throw StoreError(.corrupt, "the tool call's number was not returned") }
            return try row.decode(Int64.self)
        }
    }

    public func toolCalls(of key: WorkspaceKey, after: Int64, limit: Int) async throws -> [(seq: Int64, call: ToolCall)] {
        try checkOpen()
        guard limit > 0 else { return [] }
        return try await read { connection in
            try await connection.rows(
                "SELECT seq, body FROM tool_call WHERE workspace_key = \(key.rawValue) AND seq > \(after) ORDER BY seq LIMIT \(Int64(limit))"
            ).map { row in
                let (seq, body) = try row.decode((Int64, String).self)
                guard let call = RecordJSON.toolCall(body) else { throw StoreError(.corrupt, "stored tool call \(seq) cannot be read") }
                return (seq, call)
            }
        }
    }

    static func decodeToolkit(_ row: PostgresRow) throws -> Toolkit {
        let (name, body, createdAt, updatedAt) = try row.decode((String, String, PostgresTime, PostgresTime).self)
        return try RecordJSON.toolkit(name: name, body: body, createdAt: createdAt.date, updatedAt: updatedAt.date)
    }
}
