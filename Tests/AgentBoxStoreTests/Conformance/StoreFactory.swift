import AgentBoxStore
import Foundation
import Logging
import Testing

/// One ``Store`` implementation as the conformance suite sees it: a way to make a new, empty place for a store and
/// open the store there, again and again.
///
/// To run the suite against another implementation, add its factory to ``all``.
struct StoreFactory: Sendable, CustomTestStringConvertible {
    /// Shown in the test's name.
    let name: String
    /// Whether a store opened again at a location finds what an earlier one wrote there before closing.
    let isDurable: Bool
    /// Makes a new, empty location.
    let makeLocation: @Sendable () async throws -> StoreLocation

    var testDescription: String { name }

    /// Every implementation the suite runs against: Postgres too when `AGENTBOX_POSTGRES_URL` names a server
    /// (`scripts/setup-postgres.sh` starts one; `scripts/test.sh` sets it).
    static let all: [StoreFactory] = [.sqlite, .sqliteInMemory] + (PostgresTestServer.shared != nil ? [.postgres] : [])

    /// The implementations that keep their data across closing and opening again.
    static let durable: [StoreFactory] = all.filter(\.isDurable)

    /// ``SQLiteStore`` in a data directory of its own, as a server keeps it.
    static let sqlite = StoreFactory(name: "SQLite", isDurable: true) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-store-\(UUID())")
        return StoreLocation(
            open: { try SQLiteStore.open(in: directory) },
            remove: { try? FileManager.default.removeItem(at: directory) })
    }

    /// ``SQLiteStore/inMemory()``: each opening is a new, empty store.
    static let sqliteInMemory = StoreFactory(name: "SQLite in memory", isDurable: false) {
        StoreLocation(open: { try SQLiteStore.inMemory() }, remove: {})
    }

    /// ``PostgresStore`` (single node) in a database of its own on the server of `AGENTBOX_POSTGRES_URL`, dropped
    /// afterwards.
    static let postgres = StoreFactory(name: "Postgres", isDurable: true) {
        guard let server = PostgresTestServer.shared else { throw PostgresTestServer.notConfigured }
        let database = try await server.createDatabase()
        return StoreLocation(
            open: { try await PostgresStore.open(location: database, maximumConnections: 4, logger: PostgresTestServer.logger) },
            remove: { await server.dropDatabase(database) })
    }
}

/// A place where a store lives: a directory, a database.
struct StoreLocation: Sendable {
    /// Opens the store at this location (creating it the first time).
    let open: @Sendable () async throws -> any Store
    /// Removes whatever the location holds.
    let remove: @Sendable () async -> Void
}

extension StoreFactory {
    /// Runs `body` with a new store at a new location; closes the store and removes the location afterwards.
    func withStore<T>(_ body: (any Store) async throws -> T) async throws -> T {
        try await withLocation { location throws in
            let store = try await location.open()
            do {
                let result = try await body(store)
                try await store.close()
                return result
            } catch {
                try? await store.close()
                throw error
            }
        }
    }

    /// Runs `body` with a new location, removed afterwards.
    func withLocation<T>(_ body: (StoreLocation) async throws -> T) async throws -> T {
        let location = try await makeLocation()
        do {
            let result = try await body(location)
            await location.remove()
            return result
        } catch {
            await location.remove()
            throw error
        }
    }
}
