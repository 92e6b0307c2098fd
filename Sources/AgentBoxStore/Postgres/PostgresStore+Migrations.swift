import Logging
import PostgresNIO

extension PostgresStore {
    /// One step of the schema: its version (its place in ``migrations``), a name, and its statements.
    struct Migration: Sendable {
        let version: Int
        let name: String
        let statements: [String]
    }

    /// The schema, one versioned step per change. Steps are never edited once released: a change is a new step.
    ///
    /// Identities and keys are `text COLLATE "C"`, whatever the database's own collation: workspaces page in byte
    /// order, and ties sort the same way as in SQLite. Times are `timestamptz` (kept to the microsecond).
    static let migrations: [Migration] = [
        Migration(
            version: 1, name: "store",
            statements: [
                // Sandbox numbers are never handed out twice, even for a workspace deleted and made again.
                "CREATE SEQUENCE sandbox_number AS bigint",
                """
                CREATE TABLE workspace (
                    key text COLLATE "C" PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE, config text NOT NULL,
                    created_at timestamptz NOT NULL, last_active_at timestamptz NOT NULL, event_seq_bound bigint NOT NULL DEFAULT 0,
                    sandbox_number bigint NOT NULL
                )
                """,
                """
                CREATE TABLE snapshot (
                    id text COLLATE "C" PRIMARY KEY, workspace_key text COLLATE "C" NOT NULL, config text NOT NULL,
                    created_at timestamptz NOT NULL, size_bytes bigint NOT NULL
                )
                """,
                "CREATE INDEX snapshot_workspace ON snapshot (workspace_key, created_at, id)",
                """
                CREATE TABLE preview (
                    token_hash text COLLATE "C" PRIMARY KEY, workspace_key text COLLATE "C" NOT NULL, port bigint NOT NULL,
                    created_at timestamptz NOT NULL, expires_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX preview_workspace ON preview (workspace_key, expires_at)",
                """
                CREATE TABLE session (
                    id text COLLATE "C" PRIMARY KEY, workspace_key text COLLATE "C" NOT NULL, agent text NOT NULL, agent_session_id text,
                    state text NOT NULL, created_at timestamptz NOT NULL, stop_reason text, settings text NOT NULL
                )
                """,
                "CREATE INDEX session_workspace ON session (workspace_key, created_at, id)",
                // A page of a transcript is one range scan of the primary key, whatever the session's length.
                """
                CREATE TABLE session_event (
                    session_id text COLLATE "C" NOT NULL, seq bigint NOT NULL, at timestamptz NOT NULL, kind text NOT NULL,
                    payload text NOT NULL, sender text NOT NULL,
                    PRIMARY KEY (session_id, seq)
                )
                """,
                """
                CREATE TABLE image (
                    name text COLLATE "C" PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE, created_at timestamptz NOT NULL,
                    size_bytes bigint NOT NULL, from_workspace text COLLATE "C" NOT NULL, description text, layers text[] NOT NULL
                )
                """,
                """
                CREATE TABLE cron_job (
                    workspace_key text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL, schedule text NOT NULL, timezone text NOT NULL,
                    action text NOT NULL, overlap text NOT NULL, enabled boolean NOT NULL, created_at timestamptz NOT NULL,
                    next_run_at timestamptz, last_run_at timestamptz, run_count bigint NOT NULL, session_id text,
                    PRIMARY KEY (workspace_key, id)
                )
                """,
                // The scheduler's start reads the jobs that wait for a slot, earliest first.
                "CREATE INDEX cron_job_next ON cron_job (next_run_at) WHERE next_run_at IS NOT NULL",
                // `ordinal` orders runs as they were claimed; a run's JSON (times as exact seconds) is in `body`.
                """
                CREATE TABLE cron_run (
                    ordinal bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, run_id text COLLATE "C" NOT NULL UNIQUE,
                    workspace_key text COLLATE "C" NOT NULL, job_id text COLLATE "C" NOT NULL, status text NOT NULL, body text NOT NULL
                )
                """,
                "CREATE INDEX cron_run_job ON cron_run (workspace_key, job_id, ordinal)",
                "CREATE INDEX cron_run_unfinished ON cron_run (ordinal) WHERE status IN ('queued', 'running')",
                """
                CREATE TABLE toolkit (
                    name text COLLATE "C" PRIMARY KEY, body text NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL
                )
                """,
                """
                CREATE TABLE tool_call (
                    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, workspace_key text COLLATE "C" NOT NULL, body text NOT NULL
                )
                """,
                "CREATE INDEX tool_call_workspace ON tool_call (workspace_key, seq)",
                // One row per workspace, session ('' for none) and model, added to as the gateway's calls end.
                """
                CREATE TABLE llm_usage (
                    workspace_key text COLLATE "C" NOT NULL, session_id text COLLATE "C" NOT NULL, model text COLLATE "C" NOT NULL,
                    requests bigint NOT NULL, input_tokens bigint NOT NULL, output_tokens bigint NOT NULL,
                    cache_read_tokens bigint NOT NULL, cache_write_tokens bigint NOT NULL,
                    PRIMARY KEY (workspace_key, session_id, model)
                )
                """,
                // Only the secret's SHA-256 is kept; a revoked token's row is deleted.
                """
                CREATE TABLE api_token (
                    id text COLLATE "C" PRIMARY KEY, hash text COLLATE "C" NOT NULL UNIQUE, role text NOT NULL, workspaces text[] NOT NULL,
                    label text, created_at timestamptz NOT NULL, expires_at timestamptz, parent_id text COLLATE "C"
                )
                """,
                "CREATE INDEX api_token_parent ON api_token (parent_id) WHERE parent_id IS NOT NULL",
            ]),
        Migration(
            version: 2, name: "cluster",
            statements: [
                """
                CREATE TABLE node (
                    id text COLLATE "C" PRIMARY KEY, address text NOT NULL, started_at timestamptz NOT NULL, heartbeat_at timestamptz NOT NULL
                )
                """,
                // One row per workspace key ever leased, kept when the lease is released (`node_id` NULL) or the
                // workspace deleted, so that epochs never go down.
                """
                CREATE TABLE lease (
                    key text COLLATE "C" PRIMARY KEY, node_id text COLLATE "C", epoch bigint NOT NULL, expires_at timestamptz NOT NULL
                )
                """,
            ]),
        Migration(
            version: 3, name: "checkpoint pointer",
            statements: [
                // The workspace's checkpoint to restore on a takeover, and the epoch it was written under: set by
                // the lease holder only (a fenced write), so a stale owner's late checkpoint never becomes the one.
                "ALTER TABLE lease ADD COLUMN checkpoint_id text, ADD COLUMN checkpoint_epoch bigint",
            ]),
        Migration(
            version: 4, name: "lease state",
            statements: [
                // The workspace's state (sleeping, booting, running) as its holder last recorded it: what other nodes
                // list for it. Cleared when the lease changes hands or is released.
                "ALTER TABLE lease ADD COLUMN state text",
            ]),
        Migration(
            version: 5, name: "blank workspaces",
            statements: [
                // Ids and sandbox numbers reserved for workspaces not created yet (their storage is made ahead).
                """
                CREATE TABLE blank_workspace (
                    id text COLLATE "C" PRIMARY KEY, sandbox_number bigint NOT NULL, created_at timestamptz NOT NULL
                )
                """,
            ]),
    ]

    /// The advisory lock that serializes migrations between nodes starting at once ("agentbox" in ASCII).
    static let migrationLock: Int64 = 0x6167_656e_7462_6f78

    /// Brings the database to the current schema: each step not yet recorded in `schema_migrations` runs in a
    /// transaction of its own that holds the migration lock, so that of nodes starting at once exactly one applies it
    /// and the others find it recorded. A database migrated by a newer version is refused as
    /// ``StoreError/Code-swift.struct/corrupt``.
    static func migrate(_ connection: Connection) async throws {
        try await inTransaction(connection) {
            try await connection.run("SELECT pg_advisory_xact_lock(\(migrationLock))")
            try await connection.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        }
        for migration in migrations {
            try await inTransaction(connection) {
                try await connection.run("SELECT pg_advisory_xact_lock(\(migrationLock))")
                let applied = try await connection.rows("SELECT max(version) FROM schema_migrations").first?.decode(Int64?.self) ?? 0
                if applied > Int64(migrations.count) {
                    throw StoreError(.corrupt, "the database's schema (version \(applied)) is from a newer AgentBox (this one knows \(migrations.count))")
                }
                guard applied < Int64(migration.version) else { return }
                for statement in migration.statements { try await connection.run(PostgresQuery(unsafeSQL: statement)) }
                try await connection.run("INSERT INTO schema_migrations (version, name) VALUES (\(Int64(migration.version)), \(migration.name))")
                connection.logger.info("store migrated", metadata: ["store.migration": "\(migration.version)-\(migration.name)"])
            }
        }
    }

    private static func inTransaction(_ connection: Connection, _ body: () async throws -> Void) async throws {
        try await connection.run("BEGIN")
        do {
            try await body()
            try await connection.run("COMMIT")
        } catch {
            try? await connection.run("ROLLBACK")
            throw error
        }
    }
}
