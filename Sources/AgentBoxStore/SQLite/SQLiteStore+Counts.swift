import AgentBoxAPI
import CoreMetrics
import Foundation
import GRDB

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
