import CoreMetrics
import PostgresNIO
import Synchronization

extension PostgresStore {
    public func recordCounts() async throws -> RecordCounts {
        try await read { connection in
            let rows = try await connection.rows(
                "SELECT NULL::text, count(*) FROM workspace UNION ALL SELECT state, count(*) FROM session GROUP BY state")
            var counts = RecordCounts(workspaces: 0, sessionsByState: [:])
            for row in rows {
                let (state, count) = try row.decode((String?, Int64).self)
                if let state { counts.sessionsByState[state] = Int(count) } else { counts.workspaces = Int(count) }
            }
            return counts
        }
    }

    public func reportMetrics(to factory: any MetricsFactory) {
        engine.timers.withLock { $0 = StoreTimers(factory: factory) }
    }
}
