import AgentBoxAPI
import CoreMetrics
import Foundation
import GRDB
import Synchronization

extension SQLiteStore {
    public func recordCounts() async throws -> RecordCounts {
        try await read { db in
            let workspaces = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(WorkspaceRow.databaseTableName)") ?? 0
            var sessions: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS count FROM \(SessionRow.databaseTableName) GROUP BY state") {
                sessions[row["state"]] = row["count"]
            }
            return RecordCounts(workspaces: workspaces, sessionsByState: sessions)
        }
    }

    public func reportMetrics(to factory: any MetricsFactory) {
        measure(with: StoreTimers(factory: factory))
    }
}

/// The operation timers of a measured ``SQLiteStore``: one per operation and kind, made on first use (operations
/// are the store's own method names, so their number is bounded).
final class StoreTimers: Sendable {
    static let label = "agentbox_store_operation_duration_seconds"

    private let factory: any MetricsFactory
    private let made = Mutex<[String: CoreMetrics.Timer]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// Records that `operation` (a `#function` such as `workspace(key:)`) of `kind` took `nanoseconds`.
    func record(_ operation: String, kind: String, nanoseconds: Int64) {
        let timer = made.withLock { made in
            let id = kind + " " + operation
            if let timer = made[id] { return timer }
            let name = operation.split(separator: "(", maxSplits: 1).first.map(String.init) ?? operation
            let timer = CoreMetrics.Timer(
                label: Self.label, dimensions: [("operation", name), ("kind", kind)], preferredDisplayUnit: .seconds, factory: factory)
            made[id] = timer
            return timer
        }
        timer.recordNanoseconds(nanoseconds)
    }
}
