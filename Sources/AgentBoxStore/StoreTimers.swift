import CoreMetrics
import Synchronization

/// The operation timers of a measured store (``Store/reportMetrics(to:)``, SQLite or Postgres): one per operation and
/// kind, made on first use (operations are the store's own method names, so their number is bounded).
final class StoreTimers: Sendable {
    static let label = "agentbox_store_operation_duration_seconds"

    private let factory: any MetricsFactory
    private let made = Mutex<[String: CoreMetrics.Timer]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// Records that `operation` of `kind` took the time since `started`.
    func record(_ operation: String, kind: String, since started: ContinuousClock.Instant) {
        let elapsed = (ContinuousClock.now - started).components
        record(operation, kind: kind, nanoseconds: elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
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
