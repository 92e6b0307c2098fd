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
        migrator.registerMigration("v9-cron") { db in
            try db.execute(
                sql: """
                    CREATE TABLE cron_job (
                        workspaceKey TEXT NOT NULL, id TEXT NOT NULL, schedule TEXT NOT NULL, timezone TEXT NOT NULL, action TEXT NOT NULL,
                        overlap TEXT NOT NULL, enabled INTEGER NOT NULL, createdAt REAL NOT NULL, nextRunAt REAL, lastRunAt REAL,
                        runCount INTEGER NOT NULL, sessionId TEXT,
                        PRIMARY KEY (workspaceKey, id)
                    ) WITHOUT ROWID
                    """)
            // The scheduler's start reads the jobs that wait for a slot, earliest first.
            try db.execute(sql: "CREATE INDEX cron_job_next ON cron_job (nextRunAt) WHERE nextRunAt IS NOT NULL")
            // `ordinal` (the rowid) orders runs as they were claimed: newest first is a backwards scan of the index.
            try db.execute(
                sql: """
                    CREATE TABLE cron_run (
                        ordinal INTEGER PRIMARY KEY AUTOINCREMENT, runId TEXT NOT NULL UNIQUE, workspaceKey TEXT NOT NULL, jobId TEXT NOT NULL,
                        status TEXT NOT NULL, body TEXT NOT NULL
                    )
                    """)
            try db.execute(sql: "CREATE INDEX cron_run_job ON cron_run (workspaceKey, jobId, ordinal)")
            try db.execute(sql: "CREATE INDEX cron_run_unfinished ON cron_run (status) WHERE status IN ('queued', 'running')")
        }
        migrator.registerMigration("v10-toolkits") { db in
            try db.execute(
                sql: """
                    CREATE TABLE toolkit (
                        name TEXT PRIMARY KEY NOT NULL, body TEXT NOT NULL, createdAt REAL NOT NULL, updatedAt REAL NOT NULL
                    )
                    """)
            try db.execute(
                sql: """
                    CREATE TABLE tool_call (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT, workspaceKey TEXT NOT NULL, body TEXT NOT NULL
                    )
                    """)
            try db.execute(sql: "CREATE INDEX tool_call_workspace ON tool_call (workspaceKey, seq)")
        }
        migrator.registerMigration("v11-llm-usage") { db in
            // One row per workspace, session ('' for none) and model, added to as the gateway's calls end.
            try db.execute(
                sql: """
                    CREATE TABLE llm_usage (
                        workspaceKey TEXT NOT NULL, sessionId TEXT NOT NULL, model TEXT NOT NULL,
                        requests INTEGER NOT NULL, inputTokens INTEGER NOT NULL, outputTokens INTEGER NOT NULL,
                        cacheReadTokens INTEGER NOT NULL, cacheWriteTokens INTEGER NOT NULL,
                        PRIMARY KEY (workspaceKey, sessionId, model)
                    ) WITHOUT ROWID
                    """)
        }
        migrator.registerMigration("v12-api-tokens") { db in
            // Only the secret's SHA-256 is kept; a revoked token's row is deleted.
            try db.execute(
                sql: """
                    CREATE TABLE api_token (
                        id TEXT PRIMARY KEY NOT NULL, hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, workspaces TEXT NOT NULL,
                        label TEXT, createdAt REAL NOT NULL, expiresAt REAL
                    )
                    """)
        }
        migrator.registerMigration("v13-api-token-parents") { db in
            try db.execute(sql: "ALTER TABLE api_token ADD COLUMN parentId TEXT")
            try db.execute(sql: "CREATE INDEX api_token_parent ON api_token (parentId) WHERE parentId IS NOT NULL")
        }
        migrator.registerMigration("v14-blank-workspaces") { db in
            // Ids and sandbox numbers reserved for workspaces not created yet (their storage is made ahead).
            try db.execute(
                sql: """
                    CREATE TABLE blank_workspace (
                        id TEXT PRIMARY KEY NOT NULL, sandboxNumber INTEGER NOT NULL, createdAt REAL NOT NULL
                    )
                    """)
        }
        return migrator
    }
}
