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
    private let state = Mutex((failing: false, refused: 0, delay: Duration.zero))
    /// While held, transcript writes wait (``hold()``, ``release()``).
    private let gate = Mutex<(held: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    struct Refused: Error, CustomStringConvertible {
        var description: String { "disk I/O error (injected)" }
    }

    init(_ base: SQLiteStore) { self.base = base }

    /// Whether transcript writes fail from now on.
    var failing: Bool {
        get { state.withLock { $0.failing } }
        set { state.withLock { $0.failing = newValue } }
    }

    /// How long each transcript write takes before it reaches the store (a slow disk).
    var delay: Duration {
        get { state.withLock { $0.delay } }
        set { state.withLock { $0.delay = newValue } }
    }

    /// Transcript writes wait from now on, until ``release()``.
    func hold() { gate.withLock { $0.held = true } }

    /// Lets the transcript writes that wait, and those to come, go on.
    func release() {
        let waiting = gate.withLock { gate in
            gate.held = false
            defer { gate.waiting.removeAll() }
            return gate.waiting
        }
        waiting.forEach { $0.resume() }
    }

    /// How many transcript writes were refused.
    var refused: Int { state.withLock { $0.refused } }

    func appendSessionEvents(_ events: [SessionEventRecord]) async throws {
        let (refuse, delay) = state.withLock { state in
            if state.failing { state.refused += 1 }
            return (state.failing, state.delay)
        }
        if delay > .zero { try await Task.sleep(for: delay) }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let held = gate.withLock { gate in
                if gate.held { gate.waiting.append(continuation) }
                return gate.held
            }
            if !held { continuation.resume() }
        }
        if refuse { throw Refused() }
        try await base.appendSessionEvents(events)
    }

    func createWorkspace(_ record: WorkspaceRecord) async throws -> (record: WorkspaceRecord, created: Bool) { try await base.createWorkspace(record) }
    func workspace(key: WorkspaceKey) async throws -> WorkspaceRecord? { try await base.workspace(key: key) }
    func createBlankWorkspace(id: String, at date: Date) async throws -> Int { try await base.createBlankWorkspace(id: id, at: date) }
    func blankWorkspaces() async throws -> [BlankWorkspaceRecord] { try await base.blankWorkspaces() }
    func claimBlankWorkspace(_ blankID: String, as record: WorkspaceRecord, eventSequenceBound: Int64) async throws -> (record: WorkspaceRecord, created: Bool)? {
        try await base.claimBlankWorkspace(blankID, as: record, eventSequenceBound: eventSequenceBound)
    }
    func deleteBlankWorkspace(id: String) async throws -> Bool { try await base.deleteBlankWorkspace(id: id) }
    func workspaces(after: WorkspaceKey?, limit: Int) async throws -> [WorkspaceRecord] { try await base.workspaces(after: after, limit: limit) }
    func deleteWorkspace(key: WorkspaceKey) async throws -> Bool { try await base.deleteWorkspace(key: key) }
    func touchWorkspace(key: WorkspaceKey, at date: Date) async throws { try await base.touchWorkspace(key: key, at: date) }
    func updateWorkspaceConfig(key: WorkspaceKey, config: WorkspaceConfig) async throws -> Bool { try await base.updateWorkspaceConfig(key: key, config: config) }
    func recordCounts() async throws -> RecordCounts { try await base.recordCounts() }
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
    func putToolkit(_ toolkit: Toolkit) async throws -> Bool { try await base.putToolkit(toolkit) }
    func toolkits() async throws -> [Toolkit] { try await base.toolkits() }
    func toolkit(name: String) async throws -> Toolkit? { try await base.toolkit(name: name) }
    func deleteToolkit(name: String) async throws -> Bool { try await base.deleteToolkit(name: name) }
    func createAccessToken(_ token: AccessTokenRecord) async throws { try await base.createAccessToken(token) }
    func accessTokens() async throws -> [AccessTokenRecord] { try await base.accessTokens() }
    func accessToken(hash: String) async throws -> AccessTokenRecord? { try await base.accessToken(hash: hash) }
    func deleteAccessToken(id: String) async throws -> [AccessTokenRecord] { try await base.deleteAccessToken(id: id) }

    func addLLMUsage(_ figures: LLMUsageFigures, of key: WorkspaceKey, session: String?, model: String) async throws {
        try await base.addLLMUsage(figures, of: key, session: session, model: model)
    }

    func llmUsage(of key: WorkspaceKey) async throws -> [LLMUsageRecord] {
        try await base.llmUsage(of: key)
    }

    func appendToolCall(_ call: ToolCall, of key: WorkspaceKey, retention: Int) async throws -> Int64 {
        try await base.appendToolCall(call, of: key, retention: retention)
    }
    func toolCalls(of key: WorkspaceKey, after: Int64, limit: Int) async throws -> [(seq: Int64, call: ToolCall)] {
        try await base.toolCalls(of: key, after: after, limit: limit)
    }
    func createCronJob(_ job: CronJobRecord) async throws { try await base.createCronJob(job) }
    func cronJobs(of key: WorkspaceKey) async throws -> [CronJobRecord] { try await base.cronJobs(of: key) }
    func cronJobCount(of key: WorkspaceKey) async throws -> Int { try await base.cronJobCount(of: key) }
    func cronJob(key: WorkspaceKey, id: String) async throws -> CronJobRecord? { try await base.cronJob(key: key, id: id) }
    func scheduledCronJobs() async throws -> [CronJobRecord] { try await base.scheduledCronJobs() }
    func updateCronJob(_ job: CronJobRecord, reschedule: Bool) async throws -> Bool { try await base.updateCronJob(job, reschedule: reschedule) }
    func setCronJobSession(key: WorkspaceKey, id: String, sessionId: String) async throws -> Bool {
        try await base.setCronJobSession(key: key, id: id, sessionId: sessionId)
    }
    func deleteCronJob(key: WorkspaceKey, id: String) async throws -> Bool { try await base.deleteCronJob(key: key, id: id) }
    func claimCronSlot(key: WorkspaceKey, id: String, slot: Date?, next: Date?, run: CronRunRecord, retention: Int) async throws -> Bool {
        try await base.claimCronSlot(key: key, id: id, slot: slot, next: next, run: run, retention: retention)
    }
    func updateCronRun(_ record: CronRunRecord) async throws -> Bool { try await base.updateCronRun(record) }
    func cronRuns(key: WorkspaceKey, jobId: String, limit: Int) async throws -> [CronRunRecord] { try await base.cronRuns(key: key, jobId: jobId, limit: limit) }
    func cronRun(key: WorkspaceKey, jobId: String, runId: String) async throws -> CronRunRecord? { try await base.cronRun(key: key, jobId: jobId, runId: runId) }
    func interruptCronRuns(endedAt: Date, error: String) async throws -> [CronRunRecord] { try await base.interruptCronRuns(endedAt: endedAt, error: error) }
    func close() async throws { try await base.close() }
}
