import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

/// The behaviour every ``Store`` must have, as the protocol's documentation states it, written once against
/// `any Store` and run against each of ``StoreFactory/all``. The requirements are tested by area, in the nested
/// suites of this one (one file each).
@Suite("Store conformance")
struct StoreConformance {}

// MARK: Fixtures

/// A key the test knows to be valid.
func key(_ raw: String) -> WorkspaceKey { WorkspaceKey(rawValue: raw)! }

/// A fixed time, `seconds` after a reference point. Whole seconds survive any store's precision exactly, so records
/// made with them compare equal after a round trip.
func time(_ seconds: Int) -> Date { Date(timeIntervalSince1970: 1_700_000_000 + Double(seconds)) }

/// A config that uses every kind of field, so that losing one shows.
let sampleConfig = WorkspaceConfig(
    limits: WorkspaceLimits(memoryMb: 256, cpuPercent: 50, pids: 64, diskMb: 1024), env: ["A": "1", "B": "two words"],
    network: NetworkPolicy(egress: .allowList(["*.example.com"])))

func workspaceRecord(_ raw: String, id: String? = nil, config: WorkspaceConfig = sampleConfig, at date: Date = time(0)) -> WorkspaceRecord {
    WorkspaceRecord(id: id ?? "id-\(raw)-\(UUID().uuidString)", key: key(raw), config: config, createdAt: date, lastActiveAt: date)
}

/// Creates workspace `raw` and returns what the store holds for it.
@discardableResult
func createWorkspace(_ store: any Store, _ raw: String, at date: Date = time(0)) async throws -> WorkspaceRecord {
    let (record, created) = try await store.createWorkspace(workspaceRecord(raw, at: date))
    try #require(created)
    return record
}

func sessionRecord(_ id: String, of workspace: String, at date: Date = time(0)) -> SessionRecord {
    SessionRecord(id: id, workspaceKey: key(workspace), agent: "mock", state: "active", createdAt: date, settings: #"{"cwd":"/workspace"}"#)
}

func sessionEvents(_ session: String, _ seqs: ClosedRange<Int64>, sender: String = "agent") -> [SessionEventRecord] {
    seqs.map { SessionEventRecord(sessionId: session, seq: $0, at: time(Int($0)), kind: "update", payload: #"{"n":\#($0)}"#, sender: sender) }
}

func snapshotRecord(_ id: String, of workspace: String, at date: Date = time(0)) -> SnapshotRecord {
    SnapshotRecord(id: id, workspaceKey: key(workspace), config: sampleConfig, createdAt: date, sizeBytes: 4096)
}

func previewRecord(_ token: String, of workspace: String, port: Int = 8080, createdAt: Date = time(0), expiresAt: Date = time(3600)) -> PreviewRecord {
    PreviewRecord(tokenHash: PreviewRecord.hash(token: token), workspaceKey: key(workspace), port: port, createdAt: createdAt, expiresAt: expiresAt)
}

/// Runs `body`, which must throw a ``StoreError`` with `code`.
func expectStoreError<T>(
    _ code: StoreError.Code, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> T
) async {
    do {
        _ = try await body()
        Issue.record("expected StoreError \(code), nothing was thrown. \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    } catch let error as StoreError {
        #expect(error.code == code, comment, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected StoreError \(code), got \(error). \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    }
}
