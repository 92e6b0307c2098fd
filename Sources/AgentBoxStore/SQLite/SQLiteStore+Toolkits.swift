import AgentBoxAPI
import Foundation
import GRDB

extension SQLiteStore {
    public func putToolkit(_ toolkit: Toolkit) async throws -> Bool {
        let body = try Self.encodeToolkit(toolkit)
        return try await write { db in
            let existed = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM toolkit WHERE name = ?)", arguments: [toolkit.name]) ?? false
            try db.execute(
                sql: """
                    INSERT INTO toolkit (name, body, createdAt, updatedAt) VALUES (?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET body = excluded.body, updatedAt = excluded.updatedAt
                    """,
                arguments: [toolkit.name, body, toolkit.createdAt.timeIntervalSince1970, toolkit.updatedAt.timeIntervalSince1970])
            return !existed
        }
    }

    public func toolkits() async throws -> [Toolkit] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT name, body, createdAt, updatedAt FROM toolkit ORDER BY name").map(Self.decodeToolkit)
        }
    }

    public func toolkit(name: String) async throws -> Toolkit? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT name, body, createdAt, updatedAt FROM toolkit WHERE name = ?", arguments: [name]).map(Self.decodeToolkit)
        }
    }

    public func deleteToolkit(name: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM toolkit WHERE name = ?", arguments: [name])
            return db.changesCount == 1
        }
    }

    @discardableResult
    public func appendToolCall(_ call: ToolCall, of key: WorkspaceKey, retention: Int) async throws -> Int64 {
        let body = String(decoding: try Self.callEncoder.encode(call), as: UTF8.self)
        return try await write { db in
            try db.execute(sql: "INSERT INTO tool_call (workspaceKey, body) VALUES (?, ?)", arguments: [key.rawValue, body])
            let seq = db.lastInsertedRowID
            try db.execute(
                sql: "DELETE FROM tool_call WHERE workspaceKey = ? AND seq <= ?",
                arguments: [key.rawValue, seq - Int64(max(retention, 1))])
            return seq
        }
    }

    public func toolCalls(of key: WorkspaceKey, after: Int64, limit: Int) async throws -> [(seq: Int64, call: ToolCall)] {
        guard limit > 0 else { return [] }
        return try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, body FROM tool_call WHERE workspaceKey = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [key.rawValue, after, limit]
            ).map { row in
                let seq: Int64 = row["seq"]
                let body: String = row["body"]
                guard let call = try? Self.callDecoder.decode(ToolCall.self, from: Data(body.utf8)) else {
                    throw StoreError(.corrupt, "stored tool call \(seq) cannot be read")
                }
                return (seq, call)
            }
        }
    }

    // The toolkit's JSON (handlers' headers included) in `body`; its times in columns, kept to the microsecond.
    private static func encodeToolkit(_ toolkit: Toolkit) throws -> String {
        String(decoding: try JSONEncoder().encode(StoredToolkit(description: toolkit.description, tools: toolkit.tools)), as: UTF8.self)
    }

    private static func decodeToolkit(_ row: Row) throws -> Toolkit {
        let name: String = row["name"]
        let body: String = row["body"]
        guard let stored = try? JSONDecoder().decode(StoredToolkit.self, from: Data(body.utf8)) else {
            throw StoreError(.corrupt, "stored toolkit '\(name)' cannot be read")
        }
        return Toolkit(
            name: name, description: stored.description, tools: stored.tools, createdAt: Date(timeIntervalSince1970: row["createdAt"]),
            updatedAt: Date(timeIntervalSince1970: row["updatedAt"]))
    }

    private struct StoredToolkit: Codable {
        var description: String
        var tools: [ToolDefinition]
    }

    private static var callEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        return encoder
    }

    private static var callDecoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }
}
