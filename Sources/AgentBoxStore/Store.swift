import AgentBoxAPI
import Foundation

/// Durable state of AgentBox: workspaces, their event numbering, snapshots, previews, and agent sessions with their
/// transcripts.
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
/// - Records that belong to a workspace (snapshots, previews, sessions) are created only for workspaces the library
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
    /// previews, its sessions and their transcripts. Answers `false` when there was no such workspace (so a second
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

    // MARK: Lifecycle

    /// Releases the store's resources. Everything written before stays durable; every later call throws
    /// ``StoreError/Code-swift.struct/closed``, and a call racing with this one either completes or throws `closed`.
    /// Closing again does nothing.
    func close() async throws
}
