import AgentBoxAPI
import GRDB

extension SQLiteStore {
    /// The schema, one named step per change. Steps are never edited once released: a change is a new step.
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
        migrator.registerMigration("v8-images") { db in
            try db.execute(
                sql: """
                    CREATE TABLE image (
                        name TEXT PRIMARY KEY NOT NULL, id TEXT NOT NULL UNIQUE, createdAt REAL NOT NULL, sizeBytes INTEGER NOT NULL,
                        fromWorkspace TEXT NOT NULL, description TEXT, layers TEXT NOT NULL
                    )
                    """)
        }
        return migrator
    }
}
