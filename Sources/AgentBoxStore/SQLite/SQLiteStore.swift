import AgentBoxAPI
import Foundation
import GRDB

/// The embedded ``Store``: one SQLite file in WAL mode, through GRDB.
///
/// A `DatabasePool` gives concurrent readers beside the single writer; schema changes are the named steps of
/// ``SQLiteStore/migrator``.
public struct SQLiteStore: Store {
    private let writer: any DatabaseWriter

    /// Opens (creating if needed) the database at `path` and migrates it to the current schema.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // Every committed write survives a crash of the process; WAL keeps this cheap.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        // Preview tokens, environments and transcripts: owner only. SQLite gives the -wal and -shm files the database
        // file's mode, so the database is made 0600 before SQLite first opens it; older stores are narrowed too.
        let created = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if created >= 0 { Glibc.close(created) }
        for file in [path, path + "-wal", path + "-shm"] { chmod(file, 0o600) }
        let pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
        self.writer = pool
    }

    /// An in-memory store, for tests.
    public static func inMemory() throws -> SQLiteStore {
        try SQLiteStore(writer: DatabaseQueue())
    }

    private init(writer: any DatabaseWriter) throws {
        try Self.migrator.migrate(writer)
        self.writer = writer
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-workspaces") { db in
            try db.create(table: WorkspaceRow.databaseTableName) { table in
                table.column("key", .text).primaryKey()
                table.column("id", .text).notNull().unique()
                table.column("config", .text).notNull()
                table.column("createdAt", .double).notNull()
                table.column("lastActiveAt", .double).notNull()
                table.column("eventSeqBound", .integer).notNull().defaults(to: 0)
            }
        }
        migrator.registerMigration("v2-sandbox-numbers") { db in
            try db.alter(table: WorkspaceRow.databaseTableName) { table in
                table.add(column: "sandboxNumber", .integer).notNull().defaults(to: 0)
            }
            try db.create(table: "counter") { table in
                table.column("name", .text).primaryKey()
                table.column("value", .integer).notNull()
            }
            try db.execute(sql: "UPDATE workspace SET sandboxNumber = rowid")
            try db.execute(sql: "INSERT INTO counter (name, value) SELECT 'sandboxNumber', COALESCE(MAX(sandboxNumber), 0) FROM workspace")
        }
        migrator.registerMigration("v3-snapshots") { db in
            try db.create(table: SnapshotRow.databaseTableName) { table in
                table.column("id", .text).primaryKey()
                table.column("workspaceKey", .text).notNull().indexed()
                table.column("config", .text).notNull()
                table.column("createdAt", .double).notNull()
                table.column("sizeBytes", .integer).notNull()
            }
        }
        migrator.registerMigration("v4-previews") { db in
            try db.create(table: PreviewRow.databaseTableName) { table in
                table.column("token", .text).primaryKey()
                table.column("workspaceKey", .text).notNull().indexed()
                table.column("port", .integer).notNull()
                table.column("createdAt", .double).notNull()
                table.column("expiresAt", .double).notNull()
            }
        }
        migrator.registerMigration("v5-sessions") { db in
            try db.create(table: "session") { table in
                table.column("id", .text).primaryKey()
                table.column("workspaceKey", .text).notNull().indexed()
                table.column("agent", .text).notNull()
                table.column("agentSessionId", .text)
                table.column("state", .text).notNull()
                table.column("createdAt", .double).notNull()
            }
            // One row per event, keyed by (session, seq): a page is one range scan of the primary key, whatever
            // the session's length. WITHOUT ROWID keeps the rows in that order.
            try db.execute(
                sql: """
                    CREATE TABLE session_event (
                        sessionId TEXT NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
                        PRIMARY KEY (sessionId, seq)
                    ) WITHOUT ROWID
                    """)
        }
        migrator.registerMigration("v6-session-details") { db in
            try db.alter(table: "session") { table in
                table.add(column: "stopReason", .text)
                table.add(column: "settings", .text).notNull().defaults(to: "{}")
            }
            try db.execute(sql: "ALTER TABLE session_event ADD COLUMN sender TEXT NOT NULL DEFAULT 'agent'")
        }
        migrator.registerMigration("v7-preview-token-hashes") { db in
            // The `token` column holds the token's SHA-256 from here on; tokens stored before are replaced by theirs.
            let tokens = try String.fetchAll(db, sql: "SELECT token FROM preview")
            for token in tokens {
                try db.execute(sql: "UPDATE preview SET token = ? WHERE token = ?", arguments: [PreviewRecord.hash(token: token), token])
            }
        }
        return migrator
    }

    public func createWorkspace(_ record: WorkspaceRecord) async throws -> (record: WorkspaceRecord, created: Bool) {
        let newRow = try WorkspaceRow(record)
        return try await writer.write { db in
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
        try await writer.read { db in try WorkspaceRow.fetchOne(db, key: key.rawValue)?.record() }
    }

    public func workspaces(after: WorkspaceKey?, limit: Int) async throws -> [WorkspaceRecord] {
        try await writer.read { db in
            var request = WorkspaceRow.order(Column("key"))
            if let after { request = request.filter(Column("key") > after.rawValue) }
            return try request.limit(max(0, limit)).fetchAll(db).map { try $0.record() }
        }
    }

    public func updateWorkspaceConfig(key: WorkspaceKey, config: WorkspaceConfig) async throws -> Bool {
        let text = String(decoding: try AgentBoxJSON.makeEncoder().encode(config), as: UTF8.self)
        return try await writer.write { db in
            try db.execute(sql: "UPDATE workspace SET config = ? WHERE key = ?", arguments: [text, key.rawValue])
            return db.changesCount > 0
        }
    }

    public func deleteWorkspace(key: WorkspaceKey) async throws -> Bool {
        try await writer.write { db in
            try SnapshotRow.filter(Column("workspaceKey") == key.rawValue).deleteAll(db)
            try PreviewRow.filter(Column("workspaceKey") == key.rawValue).deleteAll(db)
            try db.execute(
                sql: "DELETE FROM session_event WHERE sessionId IN (SELECT id FROM session WHERE workspaceKey = ?)", arguments: [key.rawValue])
            try db.execute(sql: "DELETE FROM session WHERE workspaceKey = ?", arguments: [key.rawValue])
            return try WorkspaceRow.deleteOne(db, key: key.rawValue)
        }
    }

    public func createSnapshot(_ snapshot: SnapshotRecord) async throws {
        let row = try SnapshotRow(snapshot)
        try await writer.write { db in try row.insert(db) }
    }

    public func snapshots(of key: WorkspaceKey) async throws -> [SnapshotRecord] {
        try await writer.read { db in
            try SnapshotRow.filter(Column("workspaceKey") == key.rawValue).order(Column("createdAt")).fetchAll(db).map { try $0.record() }
        }
    }

    public func snapshot(id: String) async throws -> SnapshotRecord? {
        try await writer.read { db in try SnapshotRow.fetchOne(db, key: id)?.record() }
    }

    public func deleteSnapshot(id: String) async throws -> Bool {
        try await writer.write { db in try SnapshotRow.deleteOne(db, key: id) }
    }

    public func createPreview(_ record: PreviewRecord) async throws {
        let row = PreviewRow(record)
        try await writer.write { db in
            try PreviewRow.filter(Column("workspaceKey") == row.workspaceKey && Column("expiresAt") <= row.createdAt).deleteAll(db)
            try row.insert(db)
        }
    }

    public func previews(of key: WorkspaceKey, now: Date) async throws -> [PreviewRecord] {
        try await writer.read { db in
            try PreviewRow.filter(Column("workspaceKey") == key.rawValue && Column("expiresAt") > now.timeIntervalSince1970)
                .order(Column("createdAt")).fetchAll(db).map { try $0.record() }
        }
    }

    public func preview(tokenHash: String) async throws -> PreviewRecord? {
        try await writer.read { db in try PreviewRow.fetchOne(db, key: tokenHash)?.record() }
    }

    public func deletePreview(tokenHash: String, of key: WorkspaceKey) async throws -> Bool {
        try await writer.write { db in
            try PreviewRow.filter(Column("token") == tokenHash && Column("workspaceKey") == key.rawValue).deleteAll(db) > 0
        }
    }

    public func createSession(_ record: SessionRecord) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT INTO session (id, workspaceKey, agent, agentSessionId, state, createdAt, stopReason, settings) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    record.id, record.workspaceKey.rawValue, record.agent, record.agentSessionId, record.state, record.createdAt.timeIntervalSince1970,
                    record.stopReason, record.settings,
                ])
        }
    }

    public func session(id: String) async throws -> SessionRecord? {
        try await writer.read { db in try Row.fetchOne(db, sql: "SELECT * FROM session WHERE id = ?", arguments: [id]).map(Self.session) }
    }

    public func sessions(of key: WorkspaceKey) async throws -> [SessionRecord] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM session WHERE workspaceKey = ? ORDER BY createdAt, id", arguments: [key.rawValue]).map(Self.session)
        }
    }

    public func updateSession(_ record: SessionRecord) async throws -> Bool {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE session SET agentSessionId = ?, state = ?, stopReason = ?, settings = ? WHERE id = ?",
                arguments: [record.agentSessionId, record.state, record.stopReason, record.settings, record.id])
            return db.changesCount > 0
        }
    }

    public func deleteSession(id: String) async throws -> Bool {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM session_event WHERE sessionId = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM session WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    private static func session(_ row: Row) throws -> SessionRecord {
        let key: String = row["workspaceKey"]
        guard let workspaceKey = WorkspaceKey(rawValue: key) else { throw StoreError(.corrupt, "stored session key '\(key)' is not valid") }
        return SessionRecord(
            id: row["id"], workspaceKey: workspaceKey, agent: row["agent"], agentSessionId: row["agentSessionId"], state: row["state"],
            createdAt: Date(timeIntervalSince1970: row["createdAt"]), stopReason: row["stopReason"], settings: row["settings"])
    }

    public func appendSessionEvents(_ events: [SessionEventRecord]) async throws {
        guard !events.isEmpty else { return }
        try await writer.write { db in
            let statement = try db.cachedStatement(sql: "INSERT INTO session_event (sessionId, seq, at, kind, payload, sender) VALUES (?, ?, ?, ?, ?, ?)")
            for event in events {
                try statement.execute(arguments: [event.sessionId, event.seq, event.at.timeIntervalSince1970, event.kind, event.payload, event.sender])
            }
        }
    }

    public func sessionEvents(of id: String, after: Int64, limit: Int) async throws -> [SessionEventRecord] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, at, kind, payload, sender FROM session_event WHERE sessionId = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [id, after, max(0, limit)]
            ).map { row in
                SessionEventRecord(sessionId: id, seq: row["seq"], at: Date(timeIntervalSince1970: row["at"]), kind: row["kind"], payload: row["payload"], sender: row["sender"])
            }
        }
    }

    public func lastSessionEventSeq(of id: String) async throws -> Int64 {
        try await writer.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM session_event WHERE sessionId = ?", arguments: [id]) ?? 0 }
    }

    public func touchWorkspace(key: WorkspaceKey, at date: Date) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE workspace SET lastActiveAt = MAX(lastActiveAt, ?) WHERE key = ?",
                arguments: [date.timeIntervalSince1970, key.rawValue])
        }
    }

    public func reserveEventSequence(key: WorkspaceKey, count: Int64) async throws -> Int64 {
        try await writer.write { db in
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
        try await writer.read { db in
            guard let bound = try Int64.fetchOne(db, sql: "SELECT eventSeqBound FROM workspace WHERE key = ?", arguments: [key.rawValue])
            else { throw StoreError(.notFound, "no workspace '\(key)'") }
            return bound
        }
    }

    public func close() async throws {
        if let pool = writer as? DatabasePool {
            try pool.close()
        } else if let queue = writer as? DatabaseQueue {
            try queue.close()
        }
    }
}
