import AgentBoxAPI
import Foundation
import GRDB
import Synchronization

/// The embedded ``Store``: one SQLite file in WAL mode, through GRDB.
///
/// A `DatabasePool` gives concurrent readers beside the single writer; schema changes are the named steps of
/// ``SQLiteStore/migrator``. A server keeps it in its data directory:
///
/// ```swift
/// let store = try SQLiteStore.open(in: dataDirectory)   // <dataDirectory>/agentbox.sqlite
/// let manager = try WorkspaceManager.open(configuration: configuration, store: store, logger: logger)
/// ```
public struct SQLiteStore: Store {
    private let writer: any DatabaseWriter
    /// Shared by every copy of this value, so that closing one closes them all.
    private let lifetime: Lifetime

    /// The name of the database file in a data directory.
    public static let fileName = "agentbox.sqlite"

    /// Where ``open(in:)`` keeps the database of `dataDirectory`.
    public static func databasePath(in dataDirectory: URL) -> String {
        dataDirectory.appendingPathComponent(fileName).path
    }

    /// Opens the store of a data directory (``fileName`` inside it), creating the directory and the database when
    /// there are none: the default store of a server.
    public static func open(in dataDirectory: URL) throws -> SQLiteStore {
        try FileManager.default.createDirectory(at: dataDirectory, withIntermediateDirectories: true)
        return try SQLiteStore(path: databasePath(in: dataDirectory))
    }

    /// Opens (creating if needed) the database at `path` and migrates it to the current schema. The directory that
    /// holds it must exist.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // Every committed write survives a crash of the process; WAL keeps this cheap.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        // Preview tokens, environments and transcripts: owner only. SQLite gives the -wal and -shm files the database
        // file's mode, so the database is made 0600 before SQLite first opens it; older stores are narrowed too.
        let created = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if created >= 0 { Glibc.close(created) }
        for file in [path, path + "-wal", path + "-shm"] { chmod(file, 0o600) }
        let pool = try DatabasePool(path: path, configuration: configuration)
        try self.init(writer: pool)
    }

    /// An in-memory store, for tests: it is gone once closed.
    public static func inMemory() throws -> SQLiteStore {
        try SQLiteStore(writer: DatabaseQueue())
    }

    private init(writer: any DatabaseWriter) throws {
        try Self.migrator.migrate(writer)
        self.writer = writer
        self.lifetime = Lifetime()
    }

    public func close() async throws {
        guard !lifetime.closed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        if let pool = writer as? DatabasePool {
            try pool.close()
        } else if let queue = writer as? DatabaseQueue {
            try queue.close()
        }
    }

    // MARK: Access

    /// Runs `body` on a reader, with errors in the store's terms. `operation` names the caller for its timer.
    func read<T: Sendable>(operation: String = #function, _ body: @Sendable (Database) throws -> T) async throws -> T {
        try checkOpen()
        let started = ContinuousClock.now
        defer { measure(operation, kind: "read", since: started) }
        do { return try await writer.read(body) } catch { throw storeError(error) }
    }

    /// Runs `body` in a write transaction, with errors in the store's terms. `operation` names the caller for its
    /// timer.
    func write<T: Sendable>(operation: String = #function, _ body: @Sendable (Database) throws -> T) async throws -> T {
        try checkOpen()
        let started = ContinuousClock.now
        defer { measure(operation, kind: "write", since: started) }
        do { return try await writer.write(body) } catch { throw storeError(error) }
    }

    /// Times every operation from now on with `timers` (``reportMetrics(to:)``); shared by every copy of this value.
    func measure(with timers: StoreTimers) {
        lifetime.timers.withLock { $0 = timers }
    }

    private func measure(_ operation: String, kind: String, since started: ContinuousClock.Instant) {
        lifetime.timers.withLock({ $0 })?.record(operation, kind: kind, since: started)
    }

    /// Throws ``StoreError/Code-swift.struct/closed`` once the store is closed.
    func checkOpen() throws {
        if lifetime.closed.load(ordering: .sequentiallyConsistent) { throw StoreError(.closed, "the store is closed") }
    }

    /// `error` as the ``Store`` contract names it: taken identities are conflicts, and anything from a database that
    /// was closed meanwhile means the store is closed.
    private func storeError(_ error: any Error) -> any Error {
        guard let error = error as? DatabaseError else { return error }
        if lifetime.closed.load(ordering: .sequentiallyConsistent) {
            return StoreError(.closed, "the store is closed", underlyingError: error)
        }
        if error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY || error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            return StoreError(.conflict, "a record with this identity is stored already", underlyingError: error)
        }
        return error
    }

    /// Whether the store is closed, shared by the copies of one store.
    private final class Lifetime: Sendable {
        let closed = Atomic<Bool>(false)
        let timers = Mutex<StoreTimers?>(nil)
    }
}
