import Foundation

/// What one checkpoint of a tree holds: every entry's path, type, mode, owner, mtime and size, and for files the
/// SHA-256 that names their content (`blobs/<sha256>`). Stored as compact JSON at `<prefix>/checkpoints/<id>.json`.
///
/// Versioned: ``version`` is ``currentVersion`` when written; a reader refuses a manifest from a newer writer.
public struct CheckpointManifest: Codable, Sendable, Equatable {
    /// The format written by this code. 1: the first.
    public static let currentVersion = 1

    public var version: Int
    /// Sorts as the checkpoints were made: `20261204T031502.123Z-1a2b3c`.
    public var id: String
    public var createdAt: Date
    /// The checkpoint this one was made incrementally from, if any.
    public var parent: String?
    /// In walk order: a directory before what it holds; `.` is the root itself.
    public var entries: [Entry]

    public init(version: Int = CheckpointManifest.currentVersion, id: String, createdAt: Date, parent: String?, entries: [Entry]) {
        self.version = version
        self.id = id
        self.createdAt = createdAt
        self.parent = parent
        self.entries = entries
    }

    /// One file, directory, symlink or overlay whiteout.
    public struct Entry: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable {
            case file
            case directory
            case symlink
            /// An overlay file system's mark of a deleted lower file (a character device 0:0), which a workspace's
            /// `system/*/upper` layers hold.
            case whiteout
        }

        /// Relative to the root, `/`-separated; `.` for the root.
        public var path: String
        public var kind: Kind
        /// The permission bits, set-id and sticky bits included (`st_mode & 0o7777`).
        public var mode: UInt32
        /// As `mapOwner` gave them: the ids seen inside the workspace.
        public var uid: UInt32
        public var gid: UInt32
        /// Nanoseconds since 1970.
        public var mtime: Int64
        /// Bytes of a file; 0 otherwise.
        public var size: Int64
        /// A file's content address (lowercase hex).
        public var sha256: String?
        /// A symlink's target, as written (never followed).
        public var target: String?
        /// The file's inode when it was read: with `size` and `mtime`, what lets the next checkpoint of the same tree
        /// reuse the digest without reading the file. Meaningless on another file system.
        public var inode: UInt64?

        public init(
            path: String, kind: Kind, mode: UInt32, uid: UInt32, gid: UInt32, mtime: Int64, size: Int64 = 0, sha256: String? = nil,
            target: String? = nil, inode: UInt64? = nil
        ) {
            self.path = path
            self.kind = kind
            self.mode = mode
            self.uid = uid
            self.gid = gid
            self.mtime = mtime
            self.size = size
            self.sha256 = sha256
            self.target = target
            self.inode = inode
        }
    }

    /// The bytes of all files.
    public var totalBytes: Int64 { entries.reduce(0) { $0 + $1.size } }

    /// The distinct content addresses the files need.
    public var blobs: Set<String> { Set(entries.compactMap(\.sha256)) }

    /// Compact JSON (sorted keys, dates as seconds since 1970).
    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .secondsSince1970
        return try encoder.encode(self)
    }

    /// Decodes a manifest; `.invalidArgument` for one written by a newer version.
    public static func decode(_ data: Data) throws -> CheckpointManifest {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        struct Header: Decodable { var version: Int }
        let header: Header
        do { header = try decoder.decode(Header.self, from: data) } catch {
            throw BlobError(.invalidResponse, "not a checkpoint manifest: \(error)")
        }
        guard header.version <= currentVersion else {
            throw BlobError(.invalidArgument, "checkpoint manifest version \(header.version) is newer than this reader's (\(currentVersion))")
        }
        do { return try decoder.decode(CheckpointManifest.self, from: data) } catch {
            throw BlobError(.invalidResponse, "a malformed checkpoint manifest: \(error)")
        }
    }
}
