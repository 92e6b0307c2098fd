import Foundation

/// What kind of file system entry.
public enum FileType: String, Codable, Sendable {
    case file
    case directory
    case symlink
    /// A device, socket or FIFO.
    case other
}

/// One entry of `GET .../fs/entries`.
public struct FileEntry: Codable, Sendable, Equatable {
    public var name: String
    /// The entry's path in the workspace's view.
    public var path: String
    public var type: FileType
    public var size: Int64
    public var modifiedAt: Date
    /// For a symlink, what it points to.
    public var target: String?

    public init(name: String, path: String, type: FileType, size: Int64, modifiedAt: Date, target: String? = nil) {
        self.name = name
        self.path = path
        self.type = type
        self.size = size
        self.modifiedAt = modifiedAt
        self.target = target
    }
}

/// `GET .../fs/entries`.
public struct FileEntryList: Codable, Sendable, Equatable {
    public var items: [FileEntry]
    /// True when the listing stopped at the server's entry limit.
    public var truncated: Bool

    public init(items: [FileEntry], truncated: Bool = false) {
        self.items = items
        self.truncated = truncated
    }
}

/// `GET .../fs/stat`.
public struct FileStat: Codable, Sendable, Equatable {
    public var path: String
    public var type: FileType
    public var size: Int64
    /// Permission bits, as a number (0o644 = 420).
    public var mode: Int
    public var modifiedAt: Date
    public var target: String?

    public init(path: String, type: FileType, size: Int64, mode: Int, modifiedAt: Date, target: String? = nil) {
        self.path = path
        self.type = type
        self.size = size
        self.mode = mode
        self.modifiedAt = modifiedAt
        self.target = target
    }
}

/// `GET .../fs/exists`.
public struct FileExists: Codable, Sendable, Equatable {
    public var exists: Bool
    public init(exists: Bool) { self.exists = exists }
}

/// The body of `POST .../fs/mkdir`.
public struct MkdirRequest: Codable, Sendable, Equatable {
    public var path: String
    /// Create missing parents too (default false).
    public var recursive: Bool?
    public init(path: String, recursive: Bool? = nil) {
        self.path = path
        self.recursive = recursive
    }
}

/// The body of `POST .../fs/move`.
public struct MoveRequest: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    /// Replace an existing destination (default false: 409 when it exists).
    public var overwrite: Bool?
    public init(from: String, to: String, overwrite: Bool? = nil) {
        self.from = from
        self.to = to
        self.overwrite = overwrite
    }
}

/// The answer of `PUT .../fs/file`.
public struct FileWriteResult: Codable, Sendable, Equatable {
    public var path: String
    public var bytesWritten: Int64
    public init(path: String, bytesWritten: Int64) {
        self.path = path
        self.bytesWritten = bytesWritten
    }
}

/// The answer of `POST .../fs/upload`.
public struct UploadResult: Codable, Sendable, Equatable {
    /// The paths unpacked (the first 1,000).
    public var paths: [String]
    public var count: Int
    public init(paths: [String], count: Int) {
        self.paths = paths
        self.count = count
    }
}

/// One change seen by `GET .../fs/watch` (the SSE event name is its `type`).
public struct FileWatchEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// An entry appeared (created, or moved in from outside the watched tree).
        case created
        /// A file was written and closed, or replaced through the fs API.
        case modified
        /// An entry disappeared (deleted, or moved out of the watched tree).
        case deleted
        /// An entry was renamed within the watched tree: `from` → `path`.
        case moved
        /// Changes were lost (the kernel's or the stream's queue overflowed): list the tree again.
        case overflow
    }

    public var type: Kind
    /// The entry's path in the workspace's view (the watched path for `overflow`).
    public var path: String
    /// For `moved`: where the entry was.
    public var from: String?
    /// Whether the entry is a directory.
    public var isDirectory: Bool?

    public init(type: Kind, path: String, from: String? = nil, isDirectory: Bool? = nil) {
        self.type = type
        self.path = path
        self.from = from
        self.isDirectory = isDirectory
    }
}
