import AgentBoxAPI
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The ``Store`` kept in PostgreSQL, through postgres-nio's connection pool: for one node, or shared by the nodes of a
/// cluster (``ClusterStore``) when opened with a node id.
///
/// ```swift
/// let store = try await PostgresStore.open(url: "postgres://agentbox@db:5432/agentbox", nodeId: "node-1", logger: logger)
/// ```
///
/// Opening migrates the database to the current schema (``PostgresStore/migrations``: versioned steps, each in a
/// transaction, serialized between nodes by an advisory lock). Opened with a node id, every write that concerns one
/// workspace first checks, in its transaction, that this node still holds the workspace's lease with the epoch it
/// acquired (the lease row read `FOR SHARE`, so that a takeover waits for the write or the write sees the takeover),
/// and throws ``StoreError/Code-swift.struct/fenced`` otherwise. Opened without one, there are no leases to check.
public struct PostgresStore: ClusterStore {
    /// The node this store belongs to; `""` when it was opened without one (a single node: no leases, no fencing, and
    /// the lease requirements of ``ClusterStore`` throw ``StoreError/Code-swift.struct/invalidArgument``).
    public let nodeId: String
    /// Shared by every copy of this value, so that closing one closes them all.
    let engine: Engine

    /// Opens the store in the database that `url` names (`postgres://user:password@host:port/database`, see
    /// ``Location``), migrating it first. Fails at once when the server cannot be reached.
    ///
    /// - Parameters:
    ///   - nodeId: The node of a cluster this store belongs to (``ClusterStore``); `nil` for a single node.
    ///   - maximumConnections: The pool's size.
    ///   - logger: Where the store and its connections log.
    public static func open(url: String, nodeId: String? = nil, maximumConnections: Int = 20, logger: Logger) async throws -> PostgresStore {
        try await open(location: Location(url: url), nodeId: nodeId, maximumConnections: maximumConnections, logger: logger)
    }

    /// Opens the store at `location`; see ``open(url:nodeId:maximumConnections:logger:)``.
    public static func open(location: Location, nodeId: String? = nil, maximumConnections: Int = 20, logger: Logger) async throws -> PostgresStore {
        if let nodeId, nodeId.isEmpty { throw StoreError(.invalidArgument, "a node id cannot be empty") }
        guard maximumConnections >= 1 else { throw StoreError(.invalidArgument, "a store needs at least one connection") }
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.username, password: location.password, database: location.database,
            tls: .disable)
        configuration.options.maximumConnections = maximumConnections
        // The pool starts running first (the engine's task), and is used once the schema is current.
        let engine = Engine(client: PostgresClient(configuration: configuration, backgroundLogger: logger), node: nodeId, logger: logger)
        do {
            // Migrations run on a connection of their own, which fails at once when the server cannot be reached (a
            // pool keeps trying).
            let connection = try await PostgresConnection.connect(
                configuration: PostgresConnection.Configuration(
                    host: location.host, port: location.port, username: location.username, password: location.password,
                    database: location.database, tls: .disable),
                id: 0, logger: logger)
            do {
                try await migrate(Connection(connection: connection, logger: logger))
            } catch {
                try? await connection.close()
                throw error
            }
            try? await connection.close()
        } catch {
            engine.runner.cancel()
            await engine.runner.value
            throw error
        }
        return PostgresStore(nodeId: nodeId ?? "", engine: engine)
    }

    public func close() async throws {
        guard !engine.closed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        // Cancelling the pool's run closes its connections; calls in flight then fail, and answer `closed`.
        // Calls waiting for a connection are cancelled: one queued as the pool stopped was seen to wait for ever.
        engine.cancelCallsInFlight()
        engine.runner.cancel()
        // The pool's run returns once its connections are closed. A close that raced calls in flight was seen to wait
        // for it for ever (no connection left, no CPU: clean-clone CI runs hung in the store tests), so it waits at
        // most `closeLimit`; the run, cancelled, ends on its own.
        // Unstructured: a task group would wait for its child awaiting the run, which is the wait to bound.
        let runner = engine.runner
        let once = Mutex(false)
        let ended: Bool = await withCheckedContinuation { continuation in
            let finish: @Sendable (Bool) -> Void = { value in
                if once.withLock({ done in defer { done = true }; return !done }) { continuation.resume(returning: value) }
            }
            Task {
                await runner.value
                finish(true)
            }
            Task {
                try? await Task.sleep(for: Self.closeLimit)
                finish(false)
            }
        }
        if !ended {
            engine.logger.warning("the Postgres pool had not stopped \(Self.closeLimit) after the store was closed; not waiting for it")
        }
    }

    /// How long ``close()`` waits for the pool to stop.
    static let closeLimit: Duration = .seconds(5)

    // MARK: Access

    /// Runs `body` on a pooled connection, with errors in the store's terms. `operation` names the caller for its timer.
    func read<T: Sendable>(operation: String = #function, _ body: (Connection) async throws -> T) async throws -> T {
        try checkOpen()
        let started = ContinuousClock.now
        defer { engine.measure(operation, kind: "read", since: started) }
        do {
            return try await engine.cancelledAtClose {
                try await engine.client.withConnection { connection in
                    try await body(Connection(connection: connection, logger: engine.logger))
                }
            }
        } catch {
            throw engine.storeError(error)
        }
    }

    /// Runs the write `body`, with errors in the store's terms. `operation` names the caller for its timer.
    ///
    /// `body` runs in a transaction when it must be `atomic` (more than one statement) or when the store is a
    /// cluster's and the write concerns a workspace (`fence`): the transaction then first checks this node's lease
    /// (``checkFence(_:on:)``). A single statement needs no transaction of its own.
    func write<T: Sendable>(
        operation: String = #function, fence: Fence, atomic: Bool = false, _ body: (Connection) async throws -> T
    ) async throws -> T {
        try checkOpen()
        let fenced = engine.node != nil && !fence.isNone
        // A workspace whose lease this store never acquired: refused without asking the database.
        if fenced, case .workspace(let key) = fence, engine.epoch(of: key.rawValue) == nil { throw Self.fencedError(key.rawValue) }
        let started = ContinuousClock.now
        defer { engine.measure(operation, kind: "write", since: started) }
        do {
            return try await engine.cancelledAtClose {
                try await engine.client.withConnection { pooled in
                    let connection = Connection(connection: pooled, logger: engine.logger)
                    guard fenced || atomic else { return try await body(connection) }
                    try await connection.run("BEGIN")
                    do {
                        if fenced { try await checkFence(fence, on: connection) }
                        let result = try await body(connection)
                        try await connection.run("COMMIT")
                        return result
                    } catch {
                        try? await connection.run("ROLLBACK")
                        throw error
                    }
                }
            }
        } catch {
            throw engine.storeError(error)
        }
    }

    /// Throws ``StoreError/Code-swift.struct/closed`` once the store is closed.
    func checkOpen() throws {
        try engine.checkOpen()
    }

    static func fencedError(_ key: String) -> StoreError {
        StoreError(.fenced, "this node does not hold the lease of workspace '\(key)'")
    }

    /// What a write concerns, for the lease check of a cluster's store.
    enum Fence {
        /// No one workspace (tokens, toolkits, images): never checked.
        case none
        case workspace(WorkspaceKey)
        /// The workspaces of these sessions. With `all`, a session the store does not know is refused too (its
        /// workspace's lease cannot be checked); without, it is left out (the write finds nothing to change).
        case sessions([String], all: Bool)
        /// The workspace of this snapshot, if there is one.
        case snapshot(String)

        var isNone: Bool {
            if case .none = self { true } else { false }
        }
    }

    /// Checks, inside the write's transaction, that this node holds the lease of every workspace `fence` concerns with
    /// the epoch it acquired, locking the lease rows `FOR SHARE` until the transaction ends: a takeover (an `UPDATE` of
    /// the row) waits for this write, or this write sees the takeover. Throws ``StoreError/Code-swift.struct/fenced``.
    private func checkFence(_ fence: Fence, on connection: Connection) async throws {
        guard let node = engine.node else { return }
        var keys: [String]
        switch fence {
        case .none:
            return
        case .workspace(let key):
            keys = [key.rawValue]
        case .snapshot(let id):
            keys = try await connection.rows("SELECT workspace_key FROM snapshot WHERE id = \(id)").map { try $0.decode(String.self) }
        case .sessions(let ids, let all):
            let unique = Array(Set(ids))
            let rows = try await connection.rows("SELECT id, workspace_key FROM session WHERE id = ANY(\(unique))").map { try $0.decode((String, String).self) }
            if all, rows.count < unique.count {
                let missing = Set(unique).subtracting(rows.map(\.0)).sorted()
                throw StoreError(.fenced, "no lease can be checked for unknown session(s) \(missing.joined(separator: ", "))")
            }
            keys = Array(Set(rows.map(\.1)))
        }
        guard !keys.isEmpty else { return }
        keys.sort()
        var expected: [String: Int64] = [:]
        for key in keys {
            guard let epoch = engine.epoch(of: key) else { throw Self.fencedError(key) }
            expected[key] = epoch
        }
        // In key order, so that writes locking several rows never wait for each other in a cycle.
        let rows = try await connection.rows(
            "SELECT key, epoch FROM lease WHERE key = ANY(\(keys)) AND node_id = \(node) ORDER BY key FOR SHARE")
        var found: [String: Int64] = [:]
        for row in rows {
            let (key, epoch) = try row.decode((String, Int64).self)
            found[key] = epoch
        }
        for key in keys where found[key] != expected[key] { throw Self.fencedError(key) }
    }

    // MARK: The engine

    /// A pooled connection and the logger of its queries.
    struct Connection: Sendable {
        let connection: PostgresConnection
        let logger: Logger

        /// Runs `query` and collects its rows (a statement's error may arrive with its rows, so they are always read).
        func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
            try await connection.query(query, logger: logger).collect()
        }

        /// Runs `query`, ignoring any rows.
        func run(_ query: PostgresQuery) async throws {
            _ = try await rows(query)
        }
    }

    /// What every copy of a store shares: the pool and the task that runs it, whether the store is closed, its timers,
    /// and the leases it holds.
    final class Engine: Sendable {
        let client: PostgresClient
        let runner: Task<Void, Never>
        let node: String?
        let logger: Logger
        let closed = Atomic<Bool>(false)
        let timers = Mutex<StoreTimers?>(nil)
        /// The epoch of each lease (by key) this store acquired and has neither released nor lost.
        let leases = Mutex<[String: Int64]>([:])

        init(client: PostgresClient, node: String?, logger: Logger) {
            self.client = client
            self.node = node
            self.logger = logger
            self.runner = Task { await client.run() }
        }

        func epoch(of key: String) -> Int64? {
            leases.withLock { $0[key] }
        }

        /// The tasks of calls in flight (each registered for the length of its call only), cancelled by a close.
        private let inFlight = Mutex<(next: Int, tasks: [Int: TaskHandle])>((0, [:]))

        /// A task as `withUnsafeCurrentTask` gives it, kept only while the call that registered it runs.
        struct TaskHandle: @unchecked Sendable {
            let task: UnsafeCurrentTask
        }

        /// Runs `operation` so that a close of the store cancels it (and it then fails as `closed`).
        func cancelledAtClose<T>(_ operation: () async throws -> T) async throws -> T {
            let id: Int? = withUnsafeCurrentTask { task in
                guard let task else { return nil }
                return inFlight.withLock { state in
                    defer { state.next += 1 }
                    state.tasks[state.next] = TaskHandle(task: task)
                    return state.next
                }
            }
            defer { if let id { _ = inFlight.withLock { $0.tasks.removeValue(forKey: id) } } }
            // Closed between the check before the call and the registration: the close did not see this one.
            try checkOpen()
            return try await operation()
        }

        /// Throws ``StoreError/Code-swift.struct/closed`` once the store is closed.
        func checkOpen() throws {
            if closed.load(ordering: .sequentiallyConsistent) { throw StoreError(.closed, "the store is closed") }
        }

        /// Cancels every call in flight (under the lock: a call removes itself before it returns).
        func cancelCallsInFlight() {
            inFlight.withLock { state in
                for handle in state.tasks.values { handle.task.cancel() }
            }
        }

        func measure(_ operation: String, kind: String, since started: ContinuousClock.Instant) {
            timers.withLock { $0 }?.record(operation, kind: kind, since: started)
        }

        /// `error` as the ``Store`` contract names it: anything from a store that was closed meanwhile means it is
        /// closed, and a unique violation (SQLSTATE 23505) is a conflict.
        func storeError(_ error: any Error) -> any Error {
            if error is StoreError { return error }
            if closed.load(ordering: .sequentiallyConsistent) {
                return StoreError(.closed, "the store is closed", underlyingError: error)
            }
            if let error = error as? PSQLError, error.serverInfo?[.sqlState] == "23505" {
                return StoreError(.conflict, "a record with this identity is stored already", underlyingError: error)
            }
            return error
        }
    }
}
