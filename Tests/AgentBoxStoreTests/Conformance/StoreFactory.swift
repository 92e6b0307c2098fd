import AgentBoxStore
import Foundation
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
    let makeLocation: @Sendable () throws -> StoreLocation

    var testDescription: String { name }

    /// Every implementation the suite runs against.
    static let all: [StoreFactory] = [.sqlite, .sqliteInMemory]

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
}

/// A place where a store lives: a directory, a database.
struct StoreLocation: Sendable {
    /// Opens the store at this location (creating it the first time).
    let open: @Sendable () async throws -> any Store
    /// Removes whatever the location holds.
    let remove: @Sendable () -> Void
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
        let location = try makeLocation()
        defer { location.remove() }
        return try await body(location)
    }
}
