import AgentBoxAPI
import Foundation
import GRDB

extension SQLiteStore {
    public func createWorkspace(_ record: WorkspaceRecord) async throws -> (record: WorkspaceRecord, created: Bool) {
        let newRow = try WorkspaceRow(record)
        // One write transaction: SQLite's single writer makes get-or-create atomic.
        return try await write { db in
            var row = newRow
            if let existing = try WorkspaceRow.fetchOne(db, key: row.key) {
                return (try existing.record(), false)
            }
            try db.execute(sql: "UPDATE counter SET value = value + 1 WHERE name = 'sandboxNumber'")
            row.sandboxNumber = try Int.fetchOne(db, sql: "SELECT value FROM counter WHERE name = 'sandboxNumber'") ?? 1
            try row.insert(db)
            var stored = record
            stored.sandboxNumber = row.sandboxNumber
            return (stored, true)
        }
    }

    public func workspace(key: WorkspaceKey) async throws -> WorkspaceRecord? {
        try await read { db in try WorkspaceRow.fetchOne(db, key: key.rawValue)?.record() }
    }

    public func workspaces(after: WorkspaceKey?, limit: Int) async throws -> [WorkspaceRecord] {
        // TEXT compares with SQLite's BINARY collation: byte order, as the contract asks.
        try await read { db in
            var request = WorkspaceRow.order(Column("key"))
            if let after { request = request.filter(Column("key") > after.rawValue) }
            return try request.limit(max(0, limit)).fetchAll(db).map { try $0.record() }
        }
    }

    public func updateWorkspaceConfig(key: WorkspaceKey, config: WorkspaceConfig) async throws -> Bool {
        let text = String(decoding: try AgentBoxJSON.makeEncoder().encode(config), as: UTF8.self)
        return try await write { db in
            try db.execute(sql: "UPDATE workspace SET config = ? WHERE key = ?", arguments: [text, key.rawValue])
            return db.changesCount > 0
        }
    }

    public func deleteWorkspace(key: WorkspaceKey) async throws -> Bool {
        try await write { db in
            try SnapshotRow.filter(Column("workspaceKey") == key.rawValue).deleteAll(db)
            try PreviewRow.filter(Column("workspaceKey") == key.rawValue).deleteAll(db)
            try db.execute(
                sql: "DELETE FROM session_event WHERE sessionId IN (SELECT id FROM session WHERE workspaceKey = ?)", arguments: [key.rawValue])
            try db.execute(sql: "DELETE FROM session WHERE workspaceKey = ?", arguments: [key.rawValue])
            try db.execute(sql: "DELETE FROM cron_run WHERE workspaceKey = ?", arguments: [key.rawValue])
            try db.execute(sql: "DELETE FROM cron_job WHERE workspaceKey = ?", arguments: [key.rawValue])
            try db.execute(sql: "DELETE FROM tool_call WHERE workspaceKey = ?", arguments: [key.rawValue])
            try db.execute(sql: "DELETE FROM llm_usage WHERE workspaceKey = ?", arguments: [key.rawValue])
            return try WorkspaceRow.deleteOne(db, key: key.rawValue)
        }
    }

    public func touchWorkspace(key: WorkspaceKey, at date: Date) async throws {
        try await write { db in
            try db.execute(
                sql: "UPDATE workspace SET lastActiveAt = MAX(lastActiveAt, ?) WHERE key = ?",
                arguments: [date.timeIntervalSince1970, key.rawValue])
        }
    }

    public func reserveEventSequence(key: WorkspaceKey, count: Int64) async throws -> Int64 {
        guard count >= 1 else { throw StoreError(.invalidArgument, "cannot reserve \(count) event numbers: reserve at least 1") }
        return try await write { db in
            try db.execute(
                sql: "UPDATE workspace SET eventSeqBound = eventSeqBound + ? WHERE key = ?",
                arguments: [count, key.rawValue])
            guard db.changesCount == 1,
                let bound = try Int64.fetchOne(db, sql: "SELECT eventSeqBound FROM workspace WHERE key = ?", arguments: [key.rawValue])
            else { throw StoreError(.notFound, "no workspace '\(key)'") }
            return bound
        }
    }

    public func eventSequenceBound(key: WorkspaceKey) async throws -> Int64 {
        try await read { db in
            guard let bound = try Int64.fetchOne(db, sql: "SELECT eventSeqBound FROM workspace WHERE key = ?", arguments: [key.rawValue])
            else { throw StoreError(.notFound, "no workspace '\(key)'") }
            return bound
        }
    }
}
