import AgentBoxStore
import Foundation
import Testing

/// What only ``PostgresStore`` promises: the URLs it opens, and failing at once without a server. Its behaviour as a
/// ``Store`` is ``StoreConformance``'s, as a ``ClusterStore`` ``ClusterConformance``'s.
@Suite("Postgres store")
struct PostgresStoreTests {
    @Test(arguments: [
        ("postgres://agentbox@127.0.0.1:55432/postgres", PostgresStore.Location(host: "127.0.0.1", port: 55432, username: "agentbox", database: "postgres")),
        (
            "postgresql://me:s%40cret@db.example.com/agentbox?sslmode=disable",
            PostgresStore.Location(host: "db.example.com", port: 5432, username: "me", password: "s@cret", database: "agentbox")
        ),
        ("postgres://me@[::1]:6000", PostgresStore.Location(host: "::1", port: 6000, username: "me")),
    ])
    func urlsAreParsed(_ url: String, _ expected: PostgresStore.Location) throws {
        #expect(try PostgresStore.Location(url: url) == expected)
        #expect(try PostgresStore.Location(url: expected.url) == expected, "the location's URL names it again")
    }

    @Test(arguments: [
        "mysql://me@host/db", "postgres:///db", "postgres://host/db", "postgres://me@host/db?sslmode=require", "postgres://me@host/db?x=1",
    ])
    func otherURLsAreRefused(_ url: String) {
        #expect(throws: StoreError.self) { try PostgresStore.Location(url: url) }
    }

    @Test func openingWithoutAServerFailsAtOnce() async throws {
        let started = ContinuousClock.now
        await #expect(throws: (any Error).self) {
            // Port 9 (discard) on loopback: nothing listens there.
            try await PostgresStore.open(url: "postgres://agentbox@127.0.0.1:9/postgres", logger: PostgresTestServer.logger)
        }
        // A pool would keep trying for ever; a minute leaves room for a loaded machine.
        #expect(ContinuousClock.now - started < .seconds(60))
    }
}
