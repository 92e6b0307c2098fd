import AgentBoxAPI
import Foundation
import GRDB

extension SQLiteStore {
    public func createSession(_ record: SessionRecord) async throws {
        let row = SessionRow(record)
        try await write { db in try row.insert(db) }
    }

    public func session(id: String) async throws -> SessionRecord? {
        try await read { db in try SessionRow.fetchOne(db, key: id)?.record() }
    }

    public func sessions(of key: WorkspaceKey) async throws -> [SessionRecord] {
        try await read { db in
            try SessionRow.filter(Column("workspaceKey") == key.rawValue).order(Column("createdAt"), Column("id")).fetchAll(db)
                .map { try $0.record() }
        }
    }

    public func updateSession(_ record: SessionRecord) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: "UPDATE session SET agentSessionId = ?, state = ?, stopReason = ?, settings = ? WHERE id = ?",
                arguments: [record.agentSessionId, record.state, record.stopReason, record.settings, record.id])
            return db.changesCount > 0
        }
    }

    public func deleteSession(id: String) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM session_event WHERE sessionId = ?", arguments: [id])
            return try SessionRow.deleteOne(db, key: id)
        }
    }

    // MARK: Transcripts

    public func appendSessionEvents(_ events: [SessionEventRecord]) async throws {
        try checkOpen()
        guard !events.isEmpty else { return }
        // One prepared statement for the whole batch: transcripts are the store's busiest writes.
        try await write { db in
            let statement = try db.cachedStatement(sql: "INSERT INTO session_event (sessionId, seq, at, kind, payload, sender) VALUES (?, ?, ?, ?, ?, ?)")
            for event in events {
                try statement.execute(arguments: [event.sessionId, event.seq, event.at.timeIntervalSince1970, event.kind, event.payload, event.sender])
            }
        }
    }

    public func sessionEvents(of id: String, after: Int64, limit: Int) async throws -> [SessionEventRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, at, kind, payload, sender FROM session_event WHERE sessionId = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [id, after, max(0, limit)]
            ).map { row in
                SessionEventRecord(sessionId: id, seq: row["seq"], at: Date(timeIntervalSince1970: row["at"]), kind: row["kind"], payload: row["payload"], sender: row["sender"])
            }
        }
    }

    public func lastSessionEventSeq(of id: String) async throws -> Int64 {
        try await read { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM session_event WHERE sessionId = ?", arguments: [id]) ?? 0 }
    }
}
