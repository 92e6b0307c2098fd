import AgentBoxAPI
import AgentBoxStore
import Foundation
import Synchronization

/// A ``Store`` whose transcript writes fail while told to: the real SQLite store underneath, with a switch.
///
/// Only `appendSessionEvents` fails; everything else (and every read) goes to the store as it is, so a test sees
/// exactly which events reached it.
final class WriteFailingStore: Store {
    let base: SQLiteStore
    private let state = Mutex((failing: false, refused: 0))

    struct Refused: Error, CustomStringConvertible {
        var description: String { "disk I/O error (injected)" }
    }

    init(_ base: SQLiteStore) { self.base = base }

    /// Whether transcript writes fail from now on.
    var failing: Bool {
        get { state.withLock { $0.failing } }
        set { state.withLock { $0.failing = newValue } }
    }

    /// How many transcript writes were refused.
    var refused: Int { state.withLock { $0.refused } }

    func appendSessionEvents(_ events: [SessionEventRecord]) async throws {
        let refuse = state.withLock { state in
            if state.failing { state.refused += 1 }
            return state.failing
        }
        if refuse { throw Refused() }
        try await base.appendSessionEvents(events)
    }

    func createWorkspace(_ record: WorkspaceRecord) async throws -> (record: WorkspaceRecord, created: Bool) { try await base.createWorkspace(record) }
    func workspace(key: WorkspaceKey) async throws -> WorkspaceRecord? { try await base.workspace(key: key) }
    func workspaces(after: WorkspaceKey?, limit: Int) async throws -> [WorkspaceRecord] { try await base.workspaces(after: after, limit: limit) }
    func deleteWorkspace(key: WorkspaceKey) async throws -> Bool { try await base.deleteWorkspace(key: key) }
    func touchWorkspace(key: WorkspaceKey, at date: Date) async throws { try await base.touchWorkspace(key: key, at: date) }
    func updateWorkspaceConfig(key: WorkspaceKey, config: WorkspaceConfig) async throws -> Bool { try await base.updateWorkspaceConfig(key: key, config: config) }
    func reserveEventSequence(key: WorkspaceKey, count: Int64) async throws -> Int64 { try await base.reserveEventSequence(key: key, count: count) }
    func eventSequenceBound(key: WorkspaceKey) async throws -> Int64 { try await base.eventSequenceBound(key: key) }
    func createSnapshot(_ snapshot: SnapshotRecord) async throws { try await base.createSnapshot(snapshot) }
    func snapshots(of key: WorkspaceKey) async throws -> [SnapshotRecord] { try await base.snapshots(of: key) }
    func snapshot(id: String) async throws -> SnapshotRecord? { try await base.snapshot(id: id) }
    func deleteSnapshot(id: String) async throws -> Bool { try await base.deleteSnapshot(id: id) }
    func createImage(_ image: ImageRecord) async throws { try await base.createImage(image) }
    func images() async throws -> [ImageRecord] { try await base.images() }
    func image(name: String) async throws -> ImageRecord? { try await base.image(name: name) }
    func deleteImage(name: String) async throws -> Bool { try await base.deleteImage(name: name) }
    func imageUsers(name: String, id: String) async throws -> (workspaces: [WorkspaceKey], images: [String]) {
        try await base.imageUsers(name: name, id: id)
    }
    func createPreview(_ record: PreviewRecord) async throws { try await base.createPreview(record) }
    func previews(of key: WorkspaceKey, now: Date) async throws -> [PreviewRecord] { try await base.previews(of: key, now: now) }
    func preview(tokenHash: String) async throws -> PreviewRecord? { try await base.preview(tokenHash: tokenHash) }
    func deletePreview(tokenHash: String, of key: WorkspaceKey) async throws -> Bool { try await base.deletePreview(tokenHash: tokenHash, of: key) }
    func createSession(_ record: SessionRecord) async throws { try await base.createSession(record) }
    func session(id: String) async throws -> SessionRecord? { try await base.session(id: id) }
    func sessions(of key: WorkspaceKey) async throws -> [SessionRecord] { try await base.sessions(of: key) }
    func updateSession(_ record: SessionRecord) async throws -> Bool { try await base.updateSession(record) }
    func sessionEvents(of id: String, after: Int64, limit: Int) async throws -> [SessionEventRecord] { try await base.sessionEvents(of: id, after: after, limit: limit) }
    func deleteSession(id: String) async throws -> Bool { try await base.deleteSession(id: id) }
    func lastSessionEventSeq(of id: String) async throws -> Int64 { try await base.lastSessionEventSeq(of: id) }
    func close() async throws { try await base.close() }
}
