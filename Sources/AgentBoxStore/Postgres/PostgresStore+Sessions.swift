import AgentBoxAPI
import Foundation
import PostgresNIO

extension PostgresStore {
    public func createSession(_ record: SessionRecord) async throws {
        try await write(fence: .workspace(record.workspaceKey)) { connection in
            try await connection.run(
                """
                INSERT INTO session (id, workspace_key, agent, agent_session_id, state, created_at, stop_reason, settings)
                VALUES (\(record.id), \(record.workspaceKey.rawValue), \(record.agent), \(record.agentSessionId)::text, \(record.state),
                    \(PostgresTime(record.createdAt)), \(record.stopReason)::text, \(record.settings))
                """)
        }
    }

    public func session(id: String) async throws -> SessionRecord? {
        try await read { connection in
            try await connection.rows("SELECT \(unescaped: Self.sessionColumns) FROM session WHERE id = \(id)").first.map(Self.decodeSession)
        }
    }

    public func sessions(of key: WorkspaceKey) async throws -> [SessionRecord] {
        try await read { connection in
            try await connection.rows(
                "SELECT \(unescaped: Self.sessionColumns) FROM session WHERE workspace_key = \(key.rawValue) ORDER BY created_at, id"
            ).map(Self.decodeSession)
        }
    }

    public func updateSession(_ record: SessionRecord) async throws -> Bool {
        try await write(fence: .sessions([record.id], all: false)) { connection in
            try await !connection.rows(
                """
                UPDATE session SET agent_session_id = \(record.agentSessionId)::text, state = \(record.state), stop_reason = \(record.stopReason)::text,
                    settings = \(record.settings)
                WHERE id = \(record.id) RETURNING 1
                """
            ).isEmpty
        }
    }

    public func deleteSession(id: String) async throws -> Bool {
        try await write(fence: .sessions([id], all: false)) { connection in
            try await !connection.rows(
                "WITH events AS (DELETE FROM session_event WHERE session_id = \(id)) DELETE FROM session WHERE id = \(id) RETURNING 1"
            ).isEmpty
        }
    }

    // MARK: Transcripts

    public func appendSessionEvents(_ events: [SessionEventRecord]) async throws {
        try checkOpen()
        guard !events.isEmpty else { return }
        // The whole batch as six arrays in one statement: one round trip (plus the lease check of a cluster's store),
        // atomic without a transaction of its own. A seq taken, or twice in the batch, violates the primary key.
        let sessions = events.map(\.sessionId)
        let (seqs, times) = (events.map(\.seq), events.map { PostgresTime($0.at) })
        let (kinds, payloads, senders) = (events.map(\.kind), events.map(\.payload), events.map(\.sender))
        let query: PostgresQuery = """
            INSERT INTO session_event (session_id, seq, at, kind, payload, sender)
            SELECT * FROM unnest(\(sessions)::text[], \(seqs)::bigint[], \(times)::timestamptz[], \(kinds)::text[], \(payloads)::text[], \(senders)::text[])
            """
        let ids = Array(Set(sessions))
        try await write(fence: .sessions(ids, all: true)) { connection in try await connection.run(query) }
    }

    public func sessionEvents(of id: String, after: Int64, limit: Int) async throws -> [SessionEventRecord] {
        try checkOpen()
        guard limit > 0 else { return [] }
        return try await read { connection in
            try await connection.rows(
                """
                SELECT seq, at, kind, payload, sender FROM session_event WHERE session_id = \(id) AND seq > \(after)
                ORDER BY seq LIMIT \(Int64(limit))
                """
            ).map { row in
                let (seq, at, kind, payload, sender) = try row.decode((Int64, PostgresTime, String, String, String).self)
                return SessionEventRecord(sessionId: id, seq: seq, at: at.date, kind: kind, payload: payload, sender: sender)
            }
        }
    }

    public func lastSessionEventSeq(of id: String) async throws -> Int64 {
        try await read { connection in
            try await connection.rows("SELECT COALESCE(max(seq), 0)::bigint FROM session_event WHERE session_id = \(id)").first?.decode(Int64.self) ?? 0
        }
    }

    static let sessionColumns = "id, workspace_key, agent, agent_session_id, state, created_at, stop_reason, settings"

    static func decodeSession(_ row: PostgresRow) throws -> SessionRecord {
        let (id, key, agent, agentSessionId, state, createdAt, stopReason, settings) = try row.decode(
            (String, String, String, String?, String, PostgresTime, String?, String).self)
        guard let workspaceKey = WorkspaceKey(rawValue: key) else { throw StoreError(.corrupt, "stored session key '\(key)' is not valid") }
        return SessionRecord(
            id: id, workspaceKey: workspaceKey, agent: agent, agentSessionId: agentSessionId, state: state, createdAt: createdAt.date,
            stopReason: stopReason, settings: settings)
    }
}
