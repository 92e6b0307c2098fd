import AgentBoxAPI
import Foundation
import GRDB

extension SQLiteStore {
    public func createBlankWorkspace(id: String, at date: Date) async throws -> Int {
        try await write { db in
            let taken = try Bool.fetchOne(
                db, sql: "SELECT EXISTS (SELECT 1 FROM workspace WHERE id = ?) OR EXISTS (SELECT 1 FROM blank_workspace WHERE id = ?)",
                arguments: [id, id]) ?? false
            if taken { throw StoreError(.conflict, "id '\(id)' is taken") }
            try db.execute(sql: "UPDATE counter SET value = value + 1 WHERE name = 'sandboxNumber'")
            let number = try Int.fetchOne(db, sql: "SELECT value FROM counter WHERE name = 'sandboxNumber'") ?? 1
            try db.execute(
                sql: "INSERT INTO blank_workspace (id, sandboxNumber, createdAt) VALUES (?, ?, ?)",
                arguments: [id, number, date.timeIntervalSince1970])
            return number
        }
    }

    public func blankWorkspaces() async throws -> [BlankWorkspaceRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT id, sandboxNumber, createdAt FROM blank_workspace ORDER BY createdAt, id").map { row in
                BlankWorkspaceRecord(
                    id: row["id"], sandboxNumber: row["sandboxNumber"], createdAt: Date(timeIntervalSince1970: row["createdAt"]))
            }
        }
    }

    public func claimBlankWorkspace(_ blankID: String, as record: WorkspaceRecord, eventSequenceBound: Int64) async throws
        -> (record: WorkspaceRecord, created: Bool)?
    {
        guard eventSequenceBound >= 0 else { throw StoreError(.invalidArgument, "an event-sequence bound is at least 0, not \(eventSequenceBound)") }
        var row = try WorkspaceRow(record)
        row.id = blankID
        row.eventSeqBound = eventSequenceBound
        let newRow = row
        return try await write { db in
            if let existing = try WorkspaceRow.fetchOne(db, key: newRow.key) { return (try existing.record(), false) }
            guard let number = try Int.fetchOne(db, sql: "SELECT sandboxNumber FROM blank_workspace WHERE id = ?", arguments: [blankID]) else {
                return nil
            }
            try db.execute(sql: "DELETE FROM blank_workspace WHERE id = ?", arguments: [blankID])
            var row = newRow
            row.sandboxNumber = number
            try row.insert(db)
            var stored = record
            stored.id = blankID
            stored.sandboxNumber = number
            return (stored, true)
        }
    }

    public func deleteBlankWorkspace(id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM blank_workspace WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }
}
