import Foundation
import Logging
import NIOPosix
import Synchronization

/// Incremental checkpoints of a file tree into a ``BlobStore``, and their restore (docs/BLOBS.md).
///
/// ```swift
/// let checkpointer = FileCheckpointer()
/// let previous = try await checkpointer.latestManifest(prefix: "workspaces/w1", in: store)
/// let manifest = try await checkpointer.checkpoint(
///     root: subvolume, into: store, prefix: "workspaces/w1", previous: previous, mapOwner: { ids.inside($0, $1) })
/// try await checkpointer.restore(manifest, from: store, into: emptyDirectory, mapOwner: { ids.host($0, $1) })
/// ```
/// Layout in the store: `blobs/<sha256>` (file contents, shared by every prefix), `<prefix>/checkpoints/<id>.json`
/// (a manifest), `<prefix>/latest` (the id of the newest manifest, as text).
public struct FileCheckpointer: Sendable {
    /// How many uploads or downloads run at once.
    public let concurrency: Int
    let logger: Logger?

    public init(concurrency: Int = 8, logger: Logger? = nil) {
        self.concurrency = max(1, concurrency)
        self.logger = logger
    }

    /// Where a checkpoint is, reported after each file stored (and once at the start of the uploads).
    public struct Progress: Sendable, Equatable {
        /// Entries in the tree.
        public var entries = 0
        /// Files read and hashed (the others kept their previous digest).
        public var filesRead = 0
        /// Distinct contents that were not in the previous checkpoint, and their bytes.
        public var blobsToCheck = 0
        public var bytesToCheck: Int64 = 0
        /// Of those, how many are done (uploaded, or found already in the store).
        public var blobsDone = 0
        public var bytesDone: Int64 = 0
        /// Objects actually uploaded (content, then the manifest and the pointer), and their bytes.
        public var objectsUploaded = 0
        public var bytesUploaded: Int64 = 0

        public init() {}

        init(entries: Int, filesRead: Int, blobsToCheck: Int, bytesToCheck: Int64) {
            self.entries = entries
            self.filesRead = filesRead
            self.blobsToCheck = blobsToCheck
            self.bytesToCheck = bytesToCheck
        }
    }

    /// The key of a content address.
    public static func blobKey(_ sha256: String) -> String { "blobs/\(sha256)" }

    // MARK: Checkpoint

    /// Checkpoints the tree under `root`: describes every entry, uploads the contents the store lacks, then the
    /// manifest, then moves `<prefix>/latest` to it.
    ///
    /// - Parameters:
    ///   - previous: the last checkpoint of the same tree: files whose (size, mtime, inode) are unchanged are not
    ///     read again, and its contents are taken to be in the store already. Nil for a full pass (which still
    ///     skips contents the store has, with one HEAD each).
    ///   - mapOwner: turns the owner of an entry on this host into the owner recorded (the ids inside the workspace).
    ///   - progress: called from the upload tasks, concurrently; keep it short.
    ///   - commit: called once the manifest is stored, before `<prefix>/latest` moves to it: where the checkpoint
    ///     must also be recorded elsewhere (a cluster's store, fenced by the lease). If it throws, `latest` stays
    ///     and the error is the checkpoint's.
    /// - Important: the tree should not change meanwhile (checkpoint a snapshot, or a stopped workspace): a file
    ///   that changes between its hash and its upload fails the checkpoint with `.integrity`.
    public func checkpoint(
        root: URL, into store: any BlobStore, prefix: String, previous: CheckpointManifest?,
        mapOwner: @escaping @Sendable (uid_t, gid_t) -> (uid_t, gid_t) = { ($0, $1) },
        progress: (@Sendable (Progress) -> Void)? = nil,
        commit: (@Sendable (CheckpointManifest) async throws -> Void)? = nil
    ) async throws -> CheckpointManifest {
        let prefix = try Self.normalized(prefix)
        let started = ContinuousClock.now
        var byPath: [String: CheckpointManifest.Entry] = [:]
        for entry in previous?.entries ?? [] where entry.kind == .file { byPath[entry.path] = entry }
        let scan = TreeScan(root: root.path, previous: byPath, mapOwner: mapOwner)
        let found = try await NIOThreadPool.singleton.runIfActive { try scan.run() }

        // One upload per content the previous checkpoint did not have (empty files need none).
        let known = previous?.blobs ?? []
        var pending: [String: (path: String, size: Int64)] = [:]
        for entry in found.entries where entry.kind == .file && entry.size > 0 {
            guard let digest = entry.sha256, !known.contains(digest), pending[digest] == nil else { continue }
            pending[digest] = (entry.path, entry.size)
        }
        let state = Locked(
            Progress(
                entries: found.entries.count, filesRead: found.filesRead, blobsToCheck: pending.count,
                bytesToCheck: pending.values.reduce(0) { $0 + $1.size }))
        progress?(state.withLock { $0 })
        let rootPath = root.path
        try await Self.forEach(Array(pending), concurrency: concurrency) { item in
            let (digest, source) = (item.key, item.value)
            let key = Self.blobKey(digest)
            var uploaded = false
            if try await store.head(key)?.size != source.size {
                try await store.put(key, contentsOf: URL(fileURLWithPath: rootPath + "/" + source.path), sha256: digest)
                uploaded = true
            }
            let now = state.withLock { state -> Progress in
                state.blobsDone += 1
                state.bytesDone += source.size
                if uploaded {
                    state.objectsUploaded += 1
                    state.bytesUploaded += source.size
                }
                return state
            }
            progress?(now)
        }

        // Whole milliseconds, which survive the JSON round trip exactly (a manifest read back equals this one).
        let now = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded(.down) / 1000)
        let manifest = CheckpointManifest(id: Self.newID(now), createdAt: now, parent: previous?.id, entries: found.entries)
        let data = try manifest.encoded()
        try await store.put(Self.manifestKey(prefix, manifest.id), data: data)
        try await commit?(manifest)
        try await store.put("\(prefix)/latest", data: Data(manifest.id.utf8))
        let final = state.withLock { state -> Progress in
            state.objectsUploaded += 2
            state.bytesUploaded += Int64(data.count + manifest.id.utf8.count)
            return state
        }
        progress?(final)
        logger?.info(
            "checkpoint stored",
            metadata: [
                "checkpoint.prefix": "\(prefix)", "checkpoint.id": "\(manifest.id)", "checkpoint.entries": "\(found.entries.count)",
                "checkpoint.files_read": "\(found.filesRead)", "checkpoint.objects_uploaded": "\(final.objectsUploaded)",
                "checkpoint.bytes_uploaded": "\(final.bytesUploaded)", "checkpoint.ms": "\((ContinuousClock.now - started).milliseconds)",
            ])
        return manifest
    }

    // MARK: Finding checkpoints

    /// The checkpoint `<prefix>/latest` names, or nil when the prefix has none.
    public func latestManifest(prefix: String, in store: any BlobStore) async throws -> CheckpointManifest? {
        let prefix = try Self.normalized(prefix)
        let id: String
        do {
            id = String(decoding: try await store.get("\(prefix)/latest", maxBytes: 4096), as: UTF8.self)
        } catch let error as BlobError where error.code == .notFound {
            return nil
        }
        return try await manifest(prefix: prefix, id: id.trimmingCharacters(in: .whitespacesAndNewlines), in: store)
    }

    /// One checkpoint's manifest.
    public func manifest(prefix: String, id: String, in store: any BlobStore) async throws -> CheckpointManifest {
        let prefix = try Self.normalized(prefix)
        guard Self.isValidID(id) else { throw BlobError(.invalidArgument, "not a checkpoint id: \(id)") }
        return try CheckpointManifest.decode(try await store.get(Self.manifestKey(prefix, id), maxBytes: 1 << 30))
    }

    /// The ids of the prefix's checkpoints, oldest first.
    public func checkpointIDs(prefix: String, in store: any BlobStore) async throws -> [String] {
        let prefix = try Self.normalized(prefix)
        let directory = "\(prefix)/checkpoints/"
        return try await store.listAll(prefix: directory).compactMap { object -> String? in
            guard object.key.hasSuffix(".json") else { return nil }
            let id = String(object.key.dropFirst(directory.count).dropLast(5))
            return Self.isValidID(id) ? id : nil
        }.sorted()
    }

    /// Deletes all but the newest `keep` manifests of the prefix (never the one `latest` names, nor `spared`);
    /// returns the ids deleted.
    ///
    /// Blobs stay: they are shared by every prefix of the store, and a checkpoint being made elsewhere may be
    /// about to name a blob that no manifest names yet, so deleting them safely needs a mark-and-sweep with a grace
    /// period that this does not do (docs/BLOBS.md).
    @discardableResult
    public func prune(prefix: String, in store: any BlobStore, keep: Int, sparing spared: String? = nil) async throws -> [String] {
        let prefix = try Self.normalized(prefix)
        let ids = try await checkpointIDs(prefix: prefix, in: store)
        let latest = try? await store.get("\(prefix)/latest", maxBytes: 4096)
        let current = latest.map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }
        let doomed = ids.dropLast(max(0, keep)).filter { $0 != current && $0 != spared }
        for id in doomed { try await store.delete(Self.manifestKey(prefix, id)) }
        return Array(doomed)
    }

    // MARK: Restore

    /// Restores the prefix's latest checkpoint into `directory`; returns its manifest (nil when there is none).
    @discardableResult
    public func restoreLatest(
        prefix: String, from store: any BlobStore, into directory: URL,
        mapOwner: @escaping @Sendable (uid_t, gid_t) -> (uid_t, gid_t) = { ($0, $1) }
    ) async throws -> CheckpointManifest? {
        guard let manifest = try await latestManifest(prefix: prefix, in: store) else { return nil }
        try await restore(manifest, from: store, into: directory, mapOwner: mapOwner)
        return manifest
    }

    /// Recreates a checkpoint's tree in `directory`, which must be empty (it is made when missing): directories,
    /// files (streamed from their blobs, each checked against its digest), symlinks and whiteouts, then owners
    /// (`lchown`, through `mapOwner`; only when running as root), modes and mtimes (directories last, deepest
    /// first, since filling a directory changes its mtime).
    public func restore(
        _ manifest: CheckpointManifest, from store: any BlobStore, into directory: URL,
        mapOwner: @escaping @Sendable (uid_t, gid_t) -> (uid_t, gid_t) = { ($0, $1) }
    ) async throws {
        let plan = try RestorePlan(manifest: manifest, root: directory.path)
        try await NIOThreadPool.singleton.runIfActive { try plan.makeDirectories() }
        let files = manifest.entries.filter { $0.kind == .file }
        try await Self.forEach(files, concurrency: concurrency) { entry in
            let path = plan.path(entry)
            guard entry.size > 0, let digest = entry.sha256 else {
                try await NIOThreadPool.singleton.runIfActive { _ = try LocalFile.create(path, exclusive: true) }
                return
            }
            let got = try await store.get(Self.blobKey(digest), into: URL(fileURLWithPath: path))
            guard got.size == entry.size, got.sha256 == digest else {
                throw BlobError(
                    .integrity, "blob \(digest) for \(entry.path) holds \(got.size) bytes with sha256 \(got.sha256), not \(entry.size)")
            }
        }
        try await NIOThreadPool.singleton.runIfActive { try plan.finish(mapOwner: mapOwner) }
    }

    // MARK: Helpers

    static func manifestKey(_ prefix: String, _ id: String) -> String { "\(prefix)/checkpoints/\(id).json" }

    /// A prefix without its trailing `/`; not empty, and not `blobs` (where the contents are).
    static func normalized(_ prefix: String) throws -> String {
        var prefix = prefix
        while prefix.hasSuffix("/") { prefix.removeLast() }
        guard !prefix.isEmpty, !prefix.hasPrefix("/"), prefix != "blobs", !prefix.hasPrefix("blobs/") else {
            throw BlobError(.invalidArgument, "a checkpoint prefix is a non-empty relative key outside blobs/: \(prefix)")
        }
        return prefix
    }

    /// `20261204T031502.123Z-1a2b3c`: sorts in time order, and two checkpoints in one millisecond still differ.
    static func newID(_ date: Date = Date()) -> String {
        let milliseconds = Int(date.timeIntervalSince1970 * 1000) % 1000
        let stamp = SigV4Signer.amzDate(date).dropLast()  // 20261204T031502
        return "\(stamp).\(String(format: "%03d", milliseconds))Z-\(String(format: "%06x", UInt32.random(in: 0..<(1 << 24))))"
    }

    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64
            && id.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 46 || $0 == 45 }
    }

    /// Runs `body` for each item, at most `concurrency` at once; the first error cancels the rest and is thrown.
    static func forEach<Item: Sendable>(
        _ items: [Item], concurrency: Int, _ body: @escaping @Sendable (Item) async throws -> Void
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = items.makeIterator()
            for _ in 0..<concurrency {
                guard let item = next.next() else { break }
                group.addTask { try await body(item) }
            }
            while try await group.next() != nil {
                if let item = next.next() { group.addTask { try await body(item) } }
            }
        }
    }
}

/// A value behind a lock, shareable by the tasks of a group (a `Mutex` cannot be captured: it is not copyable).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<Result: Sendable>(_ body: (inout Value) -> Result) -> Result { mutex.withLock { body(&$0) } }
}

extension Duration {
    fileprivate var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
