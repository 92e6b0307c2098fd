import AgentBoxAPI
import CoreMetrics
import Foundation

/// Durable state of AgentBox: workspaces, their event numbering, snapshots, images, previews, agent sessions with their
/// transcripts, and cron jobs with their runs.
///
/// The protocol is defined by what the library needs and says nothing about how it is kept: no SQL, no database
/// handles, no engine-specific types cross it. ``SQLiteStore`` is the embedded implementation (the default); a
/// Postgres store follows behind the same protocol, written from these comments alone, and must pass the same
/// conformance suite (`StoreConformance` in the store's tests).
///
/// Rules that hold for every requirement:
/// - Every method is safe to call concurrently, from any task; each one is atomic (it happens entirely or not at
///   all) and, once it returns, durable: a store opened again at the same place sees it.
/// - Times are kept to the microsecond: a `Date` read back differs from the one written by less than a microsecond.
/// - Asking about something that is not there (an unknown key or id) is not an error: reads answer `nil`, `[]` or 0,
///   deletions and updates answer `false`, ``touchWorkspace(key:at:)`` does nothing. The exceptions, which throw
///   ``StoreError/Code-swift.struct/notFound``, are the two event-sequence requirements, whose callers cannot go on
///   without a number.
/// - Writing a record whose identity is taken (a workspace `id`, a snapshot `id`, a preview's token hash, a session
///   `id`, a session event's `(sessionId, seq)`) throws ``StoreError/Code-swift.struct/conflict`` and writes nothing.
/// - Records that belong to a workspace (snapshots, previews, sessions, cron jobs) are created only for workspaces the library
///   holds; a store need not check that the workspace exists.
/// - After ``close()`` every call throws ``StoreError/Code-swift.struct/closed``.
/// - Failures of the engine itself (disk full, connection lost) are thrown as they come; the library treats them as
///   internal errors.
public protocol Store: Sendable {
    // MARK: Workspaces

    /// Inserts `record` unless a workspace with its key exists; returns the stored record and whether this call
    /// created it.
    ///
    /// - When the key is new: the store assigns ``WorkspaceRecord/sandboxNumber`` (whatever `record` holds is
    ///   ignored), stores the record with an event-sequence bound of 0 and returns it with `created == true`.
    /// - When the key exists: nothing is written; the stored record is returned unchanged with `created == false`
    ///   (its `id`, config and times, not `record`'s).
    ///
    /// Idempotent and atomic: of any number of concurrent calls with one key, exactly one reports `created`, and all
    /// return the same stored record. A `record.id` that another workspace holds throws
    /// ``StoreError/Code-swift.struct/conflict``.
    func createWorkspace(_ record: WorkspaceRecord) async throws -> (record: WorkspaceRecord, created: Bool)

    /// The workspace with `key`, or `nil` when there is none.
    func workspace(key: WorkspaceKey) async throws -> WorkspaceRecord?

    /// One page of workspaces: those whose key sorts strictly after `after` (all of them when `after` is `nil`), in
    /// ascending key order, at most `limit` of them.
    ///
    /// Keys sort by their bytes (UTF-8 code units compared as unsigned numbers, SQL's `COLLATE "C"`), never by a
    /// locale: `-` < `.` < `0`–`9` < `:` < `A`–`Z` < `_` < `a`–`z`. `after` need not be a stored key (the
    /// workspace that ended the previous page may be gone), so passing the last key of a page continues the
    /// listing with no workspace seen twice or skipped. `limit` of 0 or less answers `[]`; the store sets no upper
    /// bound of its own (the library caps pages).
    func workspaces(after: WorkspaceKey?, limit: Int) async throws -> [WorkspaceRecord]

    /// Deletes the workspace with `key` and everything the store keeps for it: its snapshots' records, its
    /// previews, its sessions and their transcripts, its cron jobs and their runs, its tool calls. Answers `false` when there was no such workspace (so a second
    /// call answers `false`).
    ///
    /// A workspace created again under the same key starts afresh: a new `sandboxNumber`, an event-sequence bound
    /// of 0. Sandbox numbers are never reused.
    func deleteWorkspace(key: WorkspaceKey) async throws -> Bool

    /// Records that the workspace with `key` was active at `date`: its `lastActiveAt` becomes the later of the
    /// stored one and `date` (it never moves backwards). Does nothing for an unknown key.
    func touchWorkspace(key: WorkspaceKey, at date: Date) async throws

    /// Replaces the stored config of the workspace with `key` by `config`, touching nothing else of it. Answers
    /// `true` when the workspace exists (even when `config` equals the stored one), `false` when there is none.
    func updateWorkspaceConfig(key: WorkspaceKey, config: WorkspaceConfig) async throws -> Bool

    // MARK: Blank workspaces

    /// Reserves a blank workspace with internal id `id`: a sandbox number of its own (taken from the same never-reused
    /// sequence as ``createWorkspace(_:)``'s), recorded apart from the workspaces, which it is not one of. The library
    /// makes a blank's storage (and boots its sandbox) ahead of need, so that a create can take it
    /// (``claimBlankWorkspace(_:as:eventSequenceBound:)``). Returns the sandbox number. An `id` that a blank or a workspace holds throws
    /// ``StoreError/Code-swift.struct/conflict``.
    func createBlankWorkspace(id: String, at date: Date) async throws -> Int

    /// The blank workspaces, oldest first.
    func blankWorkspaces() async throws -> [BlankWorkspaceRecord]

    /// Makes the blank with id `blankID` the workspace `record`, in one atomic step: the blank is gone, and a workspace
    /// with `record`'s key and config and times, the blank's id and its sandbox number, is stored with an
    /// event-sequence bound of `eventSequenceBound` (`record.id` and `record.sandboxNumber` are ignored): the numbers up
    /// to it are the caller's, as if it had reserved them with ``reserveEventSequence(key:count:)``.
    ///
    /// - When a workspace with `record.key` exists: nothing is written (the blank stays); the stored workspace is
    ///   returned with `created == false`, as ``createWorkspace(_:)`` does.
    /// - When there is no blank `blankID` (deleted, or claimed by another call): `nil`, and nothing is written.
    /// - Otherwise: the workspace made, with `created == true`.
    func claimBlankWorkspace(_ blankID: String, as record: WorkspaceRecord, eventSequenceBound: Int64) async throws
        -> (record: WorkspaceRecord, created: Bool)?

    /// Deletes the blank with `id`; `false` when there is none.
    func deleteBlankWorkspace(id: String) async throws -> Bool

    // MARK: Counts and metrics

    /// How many workspaces are stored, and how many sessions in each `state` (``SessionRecord/state``): one cheap
    /// read, whatever the number of records, for a metrics scrape.
    func recordCounts() async throws -> RecordCounts

    /// From now on, reports how long each operation takes as swift-metrics `Timer`s made by `factory`: the
    /// `agentbox_store_operation_duration_seconds` histogram, labelled by operation (the requirement's name, such
    /// as `workspace`) and kind (`read` or `write`). The default measures nothing.
    func reportMetrics(to factory: any MetricsFactory)

    // MARK: Event numbering

    /// Reserves the next `count` numbers of the workspace's event sequence: adds `count` to its stored bound and
    /// returns the new bound, so the reserved block is `bound - count + 1 ... bound`.
    ///
    /// Event numbers are handed out in memory from reserved blocks, so they keep increasing across restarts and
    /// crashes without a write per event: after a restart numbering resumes above the last reserved bound. The
    /// bound only grows, and concurrent reservations never return overlapping blocks. Throws
    /// ``StoreError/Code-swift.struct/notFound`` for an unknown key and ``StoreError/Code-swift.struct/invalidArgument``
    /// when `count` is less than 1 (the bound is then unchanged).
    func reserveEventSequence(key: WorkspaceKey, count: Int64) async throws -> Int64

    /// The workspace's reserved upper bound of event numbers: 0 for a new workspace, else the last value
    /// ``reserveEventSequence(key:count:)`` returned. Throws ``StoreError/Code-swift.struct/notFound`` for an unknown
    /// key.
    func eventSequenceBound(key: WorkspaceKey) async throws -> Int64

    // MARK: Snapshots

    /// Records a snapshot (its files are already in place). An `id` that is taken throws
    /// ``StoreError/Code-swift.struct/conflict``.
    func createSnapshot(_ snapshot: SnapshotRecord) async throws

    /// The snapshots of the workspace with `key`, oldest first (by `createdAt`, then by `id` for equal times); `[]`
    /// when it has none or there is no such workspace.
    func snapshots(of key: WorkspaceKey) async throws -> [SnapshotRecord]

    /// The snapshot with `id`, whichever workspace it belongs to, or `nil`.
    func snapshot(id: String) async throws -> SnapshotRecord?

    /// Deletes the record of snapshot `id`; `false` when there was none.
    func deleteSnapshot(id: String) async throws -> Bool

    // MARK: Images

    /// Records an image (its files are already in place). A `name` or `id` that is taken throws
    /// ``StoreError/Code-swift.struct/conflict``.
    func createImage(_ image: ImageRecord) async throws

    /// Every image, by name.
    func images() async throws -> [ImageRecord]

    /// The image called `name`, or `nil`.
    func image(name: String) async throws -> ImageRecord?

    /// Deletes the record of image `name`; `false` when there was none.
    func deleteImage(name: String) async throws -> Bool

    /// What uses image `name` (whose id is `id`): the workspaces made from it, and the other images that stack its
    /// layer (made from such workspaces). Each list sorted.
    func imageUsers(name: String, id: String) async throws -> (workspaces: [WorkspaceKey], images: [String])

    // MARK: Previews

    /// Records a preview token, first removing the previews of the same workspace that have expired as of
    /// `record.createdAt` (those whose `expiresAt` is at or before it); other workspaces' previews are left alone.
    /// A token hash that is taken throws ``StoreError/Code-swift.struct/conflict``.
    func createPreview(_ record: PreviewRecord) async throws

    /// The workspace's previews that have not expired at `now` (`expiresAt` strictly after `now`), oldest first (by
    /// `createdAt`, then by token hash for equal times).
    func previews(of key: WorkspaceKey, now: Date) async throws -> [PreviewRecord]

    /// The preview whose token has SHA-256 `tokenHash` (``PreviewRecord/hash(token:)``), expired or not (the
    /// caller checks `expiresAt`); `nil` when there is none: never made, revoked, removed as expired by
    /// ``createPreview(_:)``, or its workspace deleted.
    func preview(tokenHash: String) async throws -> PreviewRecord?

    /// Revokes the preview with `tokenHash` if it belongs to the workspace with `key`; `false`, deleting nothing,
    /// when there is none such (including when the token belongs to another workspace).
    func deletePreview(tokenHash: String, of key: WorkspaceKey) async throws -> Bool

    // MARK: Sessions

    /// Records a new agent session. An `id` that is taken throws ``StoreError/Code-swift.struct/conflict``.
    func createSession(_ record: SessionRecord) async throws

    /// The session with `id`, or `nil`.
    func session(id: String) async throws -> SessionRecord?

    /// The workspace's sessions, oldest first (by `createdAt`, then by `id` for equal times).
    func sessions(of key: WorkspaceKey) async throws -> [SessionRecord]

    /// Replaces what may change of session `record.id`: `agentSessionId`, `state`, `stopReason` and `settings`.
    /// Its `workspaceKey`, `agent` and `createdAt` stay as created, whatever `record` holds. Answers `true` when the
    /// session exists (even when nothing changed), `false` when there is none.
    func updateSession(_ record: SessionRecord) async throws -> Bool

    /// Deletes session `id` and its whole transcript; `false` when there was no such session.
    func deleteSession(id: String) async throws -> Bool

    // MARK: Session transcripts

    /// Appends events to transcripts, all in one transaction: once this returns every one of them is durable, and
    /// when it throws none was written. The caller numbers them (each session's `seq`s continue its last one); an
    /// event whose `(sessionId, seq)` is stored already, or appears twice in `events`, throws
    /// ``StoreError/Code-swift.struct/conflict``. Appending `[]` does nothing.
    func appendSessionEvents(_ events: [SessionEventRecord]) async throws

    /// One page of session `id`'s transcript: its events with `seq` strictly above `after`, in ascending `seq`
    /// order, at most `limit` of them. `after` of 0 (or less) starts at the beginning; passing the last `seq` of a
    /// page continues with no event seen twice or skipped. `limit` of 0 or less answers `[]`; the store sets no upper
    /// bound of its own. An unknown session has no events.
    func sessionEvents(of id: String, after: Int64, limit: Int) async throws -> [SessionEventRecord]

    /// The highest `seq` stored for session `id`; 0 when it has no events or there is no such session.
    func lastSessionEventSeq(of id: String) async throws -> Int64

    // MARK: Cron

    /// Records a new cron job. A `(workspaceKey, id)` that is taken throws ``StoreError/Code-swift.struct/conflict``.
    func createCronJob(_ job: CronJobRecord) async throws

    /// The workspace's cron jobs, oldest first (by `createdAt`, then by `id` for equal times).
    func cronJobs(of key: WorkspaceKey) async throws -> [CronJobRecord]

    /// How many jobs the workspace has.
    func cronJobCount(of key: WorkspaceKey) async throws -> Int

    /// The workspace's job `id`, or `nil`.
    func cronJob(key: WorkspaceKey, id: String) async throws -> CronJobRecord?

    /// Every job of every workspace that waits for a slot (`nextRunAt` set), earliest slot first: what a scheduler
    /// loads when it starts.
    func scheduledCronJobs() async throws -> [CronJobRecord]

    /// Replaces what a user may change of job `(job.workspaceKey, job.id)`: `schedule`, `timezone`, `overlap` and
    /// `enabled`, and with `reschedule` its `nextRunAt` too (without, the stored one stays, so that a change racing
    /// with a claim cannot bring back a slot that was claimed). The rest stays as stored, whatever `job` holds.
    /// Answers `true` when the job exists, `false` when there is none.
    func updateCronJob(_ job: CronJobRecord, reschedule: Bool) async throws -> Bool

    /// Records the session a `session` job prompts. `false` when there is no such job.
    func setCronJobSession(key: WorkspaceKey, id: String, sessionId: String) async throws -> Bool

    /// Deletes the workspace's job `id` and all its runs; `false` when there was no such job.
    func deleteCronJob(key: WorkspaceKey, id: String) async throws -> Bool

    /// Claims a slot of job `(key, id)` for `run`, all at once or not at all, so that no slot runs twice, whoever
    /// (a restarted server, a second node) tries again:
    /// - With a `slot`, the claim holds only when the job's stored `nextRunAt` equals `slot` (to the microsecond);
    ///   it then becomes `next`. Without one (a run asked for by hand) `nextRunAt` is left as it is.
    /// - The run is stored (its `runId` must be new: a taken one throws ``StoreError/Code-swift.struct/conflict``);
    ///   the job's `lastRunAt` becomes the run's `scheduledAt`, and its `runCount` grows by one unless the run's
    ///   status is `skipped`.
    /// - The job keeps at most `retention` runs: older ones (by the order they were claimed) are deleted.
    ///
    /// Answers `false`, writing nothing, when there is no such job or its `nextRunAt` is not `slot`.
    func claimCronSlot(key: WorkspaceKey, id: String, slot: Date?, next: Date?, run: CronRunRecord, retention: Int) async throws -> Bool

    /// Replaces run `record.run.runId` (its status, times and results; its job and workspace stay). `false` when
    /// there is no such run (it may have been pruned or its job deleted).
    func updateCronRun(_ record: CronRunRecord) async throws -> Bool

    /// The newest `limit` runs of the workspace's job `jobId`, newest (last claimed) first. `limit` of 0 or less
    /// answers `[]`.
    func cronRuns(key: WorkspaceKey, jobId: String, limit: Int) async throws -> [CronRunRecord]

    /// The run `runId` of the workspace's job `jobId`, or `nil`.
    func cronRun(key: WorkspaceKey, jobId: String, runId: String) async throws -> CronRunRecord?

    /// Ends every run still `queued` or `running` (whose server stopped under it) as `error` with `error` and
    /// `endedAt`, and returns them as they are now stored.
    func interruptCronRuns(endedAt: Date, error: String) async throws -> [CronRunRecord]

    // MARK: Toolkits

    /// Stores toolkit `toolkit.name`, replacing the one of that name if any (which keeps its `createdAt`; `updatedAt`
    /// is `toolkit`'s). Answers whether it was new.
    func putToolkit(_ toolkit: Toolkit) async throws -> Bool

    /// Every toolkit, by name.
    func toolkits() async throws -> [Toolkit]

    /// The toolkit called `name`, or `nil`.
    func toolkit(name: String) async throws -> Toolkit?

    /// Deletes toolkit `name`; `false` when there was none. Workspaces that name it keep the name (their calls to it fail).
    func deleteToolkit(name: String) async throws -> Bool

    // MARK: Tool calls

    /// Records a call of workspace `key` to a tool, and keeps only the workspace's newest `retention` calls. Returns its
    /// number in the workspace's history (increasing; the cursor of ``toolCalls(of:after:limit:)``).
    @discardableResult
    func appendToolCall(_ call: ToolCall, of key: WorkspaceKey, retention: Int) async throws -> Int64

    /// The workspace's calls numbered above `after`, oldest first, at most `limit`, each with its number.
    func toolCalls(of key: WorkspaceKey, after: Int64, limit: Int) async throws -> [(seq: Int64, call: ToolCall)]

    // MARK: Model usage

    /// Adds `figures` to workspace `key`'s usage of `model` in `session` (`nil`: outside any session).
    func addLLMUsage(_ figures: LLMUsageFigures, of key: WorkspaceKey, session: String?, model: String) async throws

    /// Workspace `key`'s usage, one record per session and model. Deleting the workspace deletes it.
    func llmUsage(of key: WorkspaceKey) async throws -> [LLMUsageRecord]

    // MARK: API tokens

    func createAccessToken(_ token: AccessTokenRecord) async throws

    /// Every token, oldest first.
    func accessTokens() async throws -> [AccessTokenRecord]

    /// The token whose secret hashes to `hash`, or `nil`.
    func accessToken(hash: String) async throws -> AccessTokenRecord?

    /// Deletes (revokes) token `id` and the tokens made from it (``AccessTokenRecord/parentId``); answers them, `id`'s
    /// first, or none when there was no such token.
    func deleteAccessToken(id: String) async throws -> [AccessTokenRecord]

    // MARK: Lifecycle

    /// Releases the store's resources. Everything written before stays durable; every later call throws
    /// ``StoreError/Code-swift.struct/closed``, and a call racing with this one either completes or throws `closed`.
    /// Closing again does nothing.
    func close() async throws
}

extension Store {
    public func reportMetrics(to factory: any MetricsFactory) {}
}

/// What ``Store/recordCounts()`` answers.
public struct RecordCounts: Sendable, Equatable {
    /// Stored workspaces.
    public var workspaces: Int
    /// Stored sessions by their `state` (`idle`, `running`, `closed`); a state with none is absent.
    public var sessionsByState: [String: Int]

    public init(workspaces: Int, sessionsByState: [String: Int]) {
        self.workspaces = workspaces
        self.sessionsByState = sessionsByState
    }
}
