import AgentBoxStore
import Foundation
import Logging
import PostgresNIO

/// The Postgres server the store tests use, named by `AGENTBOX_POSTGRES_URL` (a superuser's URL, such as the one
/// `scripts/setup-postgres.sh` prints): every test location is a database of its own, made and dropped through it.
final class PostgresTestServer: Sendable {
    /// The server, or `nil` when `AGENTBOX_POSTGRES_URL` is not set (the Postgres tests then do not run).
    static let shared: PostgresTestServer? = {
        guard let url = ProcessInfo.processInfo.environment["AGENTBOX_POSTGRES_URL"], !url.isEmpty else { return nil }
        do {
            return try PostgresTestServer(url: url)
        } catch {
            fatalError("AGENTBOX_POSTGRES_URL is not usable: \(error)")
        }
    }()

    static let notConfigured = StoreError(.invalidArgument, "AGENTBOX_POSTGRES_URL is not set")

    /// Quiet: a migration logs at `info` for every test database.
    static let logger: Logger = {
        var logger = Logger(label: "agentbox.store.tests")
        logger.logLevel = .warning
        return logger
    }()

    /// The admin client's: its first request may come before its `run()` has started, which it warns of.
    private static let quiet: Logger = {
        var logger = Logger(label: "agentbox.store.tests.admin")
        logger.logLevel = .error
        return logger
    }()

    private let admin: PostgresStore.Location
    private let client: PostgresClient
    /// Test databases in use at once: each holds a pool of connections, and the server has `max_connections`.
    private let databases = Permits(16)

    private init(url: String) throws {
        admin = try PostgresStore.Location(url: url)
        client = PostgresClient(
            configuration: PostgresClient.Configuration(
                host: admin.host, port: admin.port, username: admin.username, password: admin.password, database: admin.database, tls: .disable),
            backgroundLogger: Self.quiet)
        Task.detached { [client] in await client.run() }
    }

    /// A new, empty database, `ab_test_<random>`; give it back with ``dropDatabase(_:)``.
    func createDatabase() async throws -> PostgresStore.Location {
        await databases.acquire()
        let name = "ab_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        do {
            _ = try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Self.logger).collect()
        } catch {
            await databases.release()
            throw error
        }
        var location = admin
        location.database = name
        return location
    }

    /// Drops a database of ``createDatabase()``, whoever is still connected to it.
    func dropDatabase(_ location: PostgresStore.Location) async {
        if let name = location.database, name.hasPrefix("ab_test_") {
            _ = try? await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: Self.logger).collect()
        }
        await databases.release()
    }
}

/// At most `count` holders at once; the others wait, first come first served.
actor Permits {
    private var available: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) {
        available = count
    }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty {
            available += 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
