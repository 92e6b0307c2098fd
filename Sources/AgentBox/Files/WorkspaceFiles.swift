import AgentBoxAPI
import CAgentBoxSandbox
import Foundation
import NIOCore
import NIOPosix

/// The persistent files of one workspace, reached from the host without booting it: `/workspace` and
/// `/home/agent` (and host mounts), each a directory on the host.
///
/// Every path is resolved by the kernel beneath the directory of its root (`openat2` with `RESOLVE_BENEATH`), so no
/// request reaches outside: not with `..`, not through a symlink a process in the workspace planted towards a host
/// path (it fails with EXDEV), not by swapping a symlink in during the request (resolution is one system call).
/// Operations on a final component use the `*at` calls with `AT_SYMLINK_NOFOLLOW` on an already-resolved parent.
public struct WorkspaceFiles: Sendable {
    /// One directory tree the fs routes reach.
    public struct Root: Sendable {
        /// Where it appears in the workspace (`/workspace`).
        public var path: WorkspacePath
        /// Where it is on the host.
        public var hostDirectory: String
        public var readOnly: Bool
        /// A tmpfs mount: it exists only inside the running sandbox, so the fs routes cannot reach it.
        public var inMemory: Bool
        /// `hostDirectory` is a real path (a host mount's, resolved when it was allowed) whose components anyone who
        /// can write beside them may swap for symlinks since: it is opened without following any.
        public var opensWithoutSymlinks: Bool

        public init(path: WorkspacePath, hostDirectory: String, readOnly: Bool = false, inMemory: Bool = false, opensWithoutSymlinks: Bool = false) {
            self.path = path
            self.hostDirectory = hostDirectory
            self.readOnly = readOnly
            self.inMemory = inMemory
            self.opensWithoutSymlinks = opensWithoutSymlinks
        }
    }

    /// Longest first, so that a mount inside /workspace wins over /workspace.
    let roots: [Root]
    /// Files and directories the server creates get this owner (the workspace's host uid), when set.
    let owner: UInt32?
    /// The most entries one listing returns.
    public static let maxListedEntries = 100_000

    public init(roots: [Root], owner: UInt32?) {
        self.roots = roots.sorted { $0.path.components.count > $1.path.components.count }
        self.owner = owner
    }

    // MARK: Locating

    struct Location {
        let root: Root
        /// Components below the root; empty for the root itself.
        let relative: [String]
        let path: WorkspacePath

        var relativePath: String { relative.isEmpty ? "." : relative.joined(separator: "/") }
        var name: String? { relative.last }
        var parentPath: String { relative.count <= 1 ? "." : relative.dropLast().joined(separator: "/") }
    }

    func locate(_ path: WorkspacePath) throws -> Location {
        guard let root = roots.first(where: { path.isWithin($0.path) }) else {
            let served = roots.map(\.path.description).sorted().joined(separator: ", ")
            throw AgentBoxError(.invalidArgument, "'\(path)' is not in the workspace's files (\(served)); use exec for other paths")
        }
        if root.inMemory {
            throw AgentBoxError(.invalidArgument, "'\(path)' is on an in-memory mount, which exists only inside the running workspace; use exec")
        }
        return Location(root: root, relative: Array(path.components.dropFirst(root.path.components.count)), path: path)
    }

    private func writable(_ location: Location) throws {
        if location.root.readOnly { throw AgentBoxError(.forbidden, "'\(location.path)' is on a read-only mount") }
    }

    /// Runs `body` with a descriptor of the location's root directory.
    private func withRoot<T>(_ location: Location, _ body: (Int32) throws -> T) throws -> T {
        // A host mount's directory is opened by its real path on every request, as root, while the sandbox keeps the
        // descriptor it booted with: a workspace with a writable mount of the parent could rename the directory and
        // leave a symlink to the host's `/` in its place, and the fs routes followed it (the escape suite found it:
        // the host's files read and written through `/data/...`). As at boot, no symlink on that path is followed.
        let root = location.root
        let fd = root.opensWithoutSymlinks ? ab_open_directory_path_nofollow(root.hostDirectory) : ab_open_path(root.hostDirectory, 1)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw AgentBoxError(.notFound, "'\(root.path)' does not exist yet") }
            if root.opensWithoutSymlinks, code == ELOOP || code == ENOTDIR || code == EXDEV {
                throw AgentBoxError(
                    .conflict,
                    "the host directory \(root.hostDirectory) of '\(root.path)' is not what was allowed any more: a symlink on its path")
            }
            throw Self.error(code, location.path)
        }
        defer { close(fd) }
        return try body(fd)
    }

    /// A descriptor of the root directory that holds `path` (the caller closes it), and where `path` is below it.
    func openRoot(for path: WorkspacePath) throws -> (fd: Int32, location: Location) {
        let location = try locate(path)
        let fd = try withRoot(location) { fcntl($0, F_DUPFD_CLOEXEC, 0) }
        guard fd >= 0 else { throw Self.error(errno, path) }
        return (fd, location)
    }

    /// Whether `name` is one of the files that ``write(_:chunks:)`` writes beside its target before renaming it.
    static func isTemporaryName(_ name: String) -> Bool {
        guard name.hasPrefix("."), let marker = name.range(of: ".agentbox-", options: .backwards) else { return false }
        let suffix = name[marker.upperBound...]
        return !suffix.isEmpty && suffix.allSatisfy(\.isASCII) && suffix.allSatisfy(\.isNumber)
    }

    /// Opens `relative` (a path below the root) beneath `rootFD`.
    private func open(_ rootFD: Int32, _ relative: String, _ flags: Int32, _ path: WorkspacePath, mode: UInt32 = 0) throws -> Int32 {
        let fd = ab_open_beneath(rootFD, relative, flags, mode, 0)
        guard fd >= 0 else { throw Self.error(errno, path) }
        return fd
    }

    /// The errno of a failed file operation as the API error it means.
    static func error(_ code: Int32, _ path: WorkspacePath) -> AgentBoxError {
        let reason = String(cString: strerror(code))
        switch code {
        case ENOENT: return AgentBoxError(.notFound, "'\(path)' does not exist")
        case EXDEV: return AgentBoxError(.forbidden, "'\(path)' leads outside the workspace (through '..' or a symlink)")
        case ELOOP: return AgentBoxError(.invalidArgument, "'\(path)': too many symlinks, or a symlink where none may be")
        case EACCES, EPERM, EROFS: return AgentBoxError(.forbidden, "'\(path)': \(reason)")
        case EEXIST: return AgentBoxError(.conflict, "'\(path)' already exists")
        case EAGAIN: return AgentBoxError(.conflict, "'\(path)' kept changing while it was resolved (something renames along it); try again")
        case ENOTEMPTY: return AgentBoxError(.conflict, "'\(path)' is a directory that is not empty (use recursive)")
        case ENOTDIR: return AgentBoxError(.invalidArgument, "a component of '\(path)' is not a directory")
        case EISDIR: return AgentBoxError(.invalidArgument, "'\(path)' is a directory")
        case ENAMETOOLONG, EINVAL: return AgentBoxError(.invalidArgument, "'\(path)': \(reason)")
        case ENOSPC, EDQUOT: return AgentBoxError(.storageFull, "no space left for '\(path)'")
        default: return AgentBoxError(.internalError, "'\(path)': \(reason)")
        }
    }

    // MARK: Metadata

    /// The entry at `path`, without following a final symlink.
    public func stat(_ path: WorkspacePath) throws -> FileStat {
        let location = try locate(path)
        return try withRoot(location) { rootFD in
            var info = Glibc.stat()
            var target: String?
            if let name = location.name {
                let parent = try open(rootFD, location.parentPath, AB_O_PATH | O_DIRECTORY, path)
                defer { close(parent) }
                guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { throw Self.error(errno, path) }
                if info.st_mode & S_IFMT == S_IFLNK { target = Self.readLink(parent, name) }
            } else {
                guard fstat(rootFD, &info) == 0 else { throw Self.error(errno, path) }
            }
            return FileStat(
                path: path.description, type: Self.type(info.st_mode), size: Int64(info.st_size),
                mode: Int(info.st_mode & 0o7777), modifiedAt: Self.date(info.st_mtim), target: target)
        }
    }

    /// Whether something (a dangling symlink included) is at `path`.
    public func exists(_ path: WorkspacePath) throws -> Bool {
        do {
            _ = try stat(path)
            return true
        } catch let error as AgentBoxError where error.code == .notFound {
            return false
        }
    }

    /// The entries of the directory at `path`, sorted by name; with `maxDepth` > 1, those of its subdirectories too
    /// (symlinks are listed, never followed).
    public func list(_ path: WorkspacePath, maxDepth: Int) throws -> FileEntryList {
        let location = try locate(path)
        return try withRoot(location) { rootFD in
            let directory = try open(rootFD, location.relativePath, O_RDONLY | O_DIRECTORY, path)
            defer { close(directory) }
            var items: [FileEntry] = []
            var truncated = false
            try Self.walk(directory, path: path, depth: 1, maxDepth: max(1, maxDepth), into: &items, truncated: &truncated)
            return FileEntryList(items: items, truncated: truncated)
        }
    }

    private static func walk(
        _ directory: Int32, path: WorkspacePath, depth: Int, maxDepth: Int, into items: inout [FileEntry], truncated: inout Bool
    ) throws {
        for name in try names(in: directory, path: path) {
            if items.count >= maxListedEntries {
                truncated = true
                return
            }
            var info = Glibc.stat()
            guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }  // removed meanwhile
            let type = type(info.st_mode)
            let entryPath = path.appending(name)
            items.append(
                FileEntry(
                    name: name, path: entryPath.description, type: type, size: Int64(info.st_size),
                    modifiedAt: date(info.st_mtim), target: type == .symlink ? readLink(directory, name) : nil))
            if type == .directory, depth < maxDepth {
                let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { continue }
                defer { close(child) }
                try walk(child, path: entryPath, depth: depth + 1, maxDepth: maxDepth, into: &items, truncated: &truncated)
            }
        }
    }

    /// The names in a directory, sorted.
    private static func names(in directory: Int32, path: WorkspacePath) throws -> [String] {
        guard let names = FileTreeCopy.readNames(directory) else { throw error(errno, path) }
        return names.sorted()
    }

    // MARK: Reading and writing

    /// Opens the file at `path` for reading; the caller closes the descriptor. Returns it with the file's size.
    public func openForReading(_ path: WorkspacePath) throws -> (fd: Int32, size: Int64) {
        let location = try locate(path)
        return try withRoot(location) { rootFD in
            let fd = try open(rootFD, location.relativePath, O_RDONLY | O_NOCTTY | O_NONBLOCK, path)
            var info = Glibc.stat()
            guard fstat(fd, &info) == 0 else {
                close(fd)
                throw Self.error(errno, path)
            }
            guard info.st_mode & S_IFMT == S_IFREG else {
                close(fd)
                throw AgentBoxError(.invalidArgument, "'\(path)' is not a regular file")
            }
            _ = ab_set_nonblocking(fd, 0)
            return (fd, Int64(info.st_size))
        }
    }

    /// Reads up to `maximum` bytes from `fd` (blocking); an empty buffer at the end of the file.
    public static func readChunk(_ fd: Int32, maximum: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: maximum)
        var failure: Int32 = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maximum) { bytes in
            var count: Int
            repeat { count = Glibc.read(fd, bytes.baseAddress, maximum) } while count < 0 && errno == EINTR
            if count < 0 { failure = errno }
            return max(count, 0)
        }
        if failure != 0 { throw AgentBoxError(.internalError, "reading a file failed: \(String(cString: strerror(failure)))") }
        return buffer
    }

    /// Writes `chunks` to `path`, creating missing parent directories. The file is replaced atomically (written
    /// beside it, flushed to disk, then renamed over it), so a reader never sees half a file and an answered write
    /// survives a crash.
    public func write(_ path: WorkspacePath, chunks: some AsyncSequence<ByteBuffer, any Error>) async throws -> Int64 {
        let location = try locate(path)
        try writable(location)
        guard let name = location.name else { throw AgentBoxError(.invalidArgument, "'\(path)' is a directory") }
        let (parent, temporary, fd) = try withRoot(location) { rootFD -> (Int32, String, Int32) in
            let parent = try makeDirectories(rootFD, location.relative.dropLast(), path: path)
            let temporary = ".\(name.prefix(100)).agentbox-\(UInt64.random(in: 0...UInt64.max))"
            let fd = openat(parent, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                let code = errno
                close(parent)
                throw Self.error(code, path)
            }
            return (parent, temporary, fd)
        }
        defer { close(parent) }
        var written: Int64 = 0
        var open = true
        do {
            defer { if open { close(fd) } }
            var writer = UploadWriter(fd: fd, path: path)
            do {
                for try await chunk in chunks { try await writer.append(chunk) }
                try await writer.finish()
            } catch {
                await writer.abandon()  // no write may still use the descriptor once it is closed
                throw error
            }
            written = writer.submitted
            try await NIOThreadPool.singleton.runIfActive {
                if let owner { _ = fchown(fd, owner, owner) }
                guard fsync(fd) == 0 else { throw Self.error(errno, path) }
            }
            // Closed under its temporary name: a watcher must not see a write-close of the file after it is in place.
            close(fd)
            open = false
            // A new file appears by a link, which a watcher sees as created; an existing one is replaced by a rename
            // over it, a modification. (Anything else that refuses the link, or a file made meanwhile, gets the rename.)
            if linkat(parent, temporary, parent, name, 0) == 0 {
                unlinkat(parent, temporary, 0)
            } else {
                guard renameat(parent, temporary, parent, name) == 0 else { throw Self.error(errno, path) }
            }
            try Self.syncDirectory(parent, path: path)
        } catch {
            unlinkat(parent, temporary, 0)
            throw error
        }
        return written
    }

    static func writeAll(_ fd: Int32, _ buffer: ByteBuffer, path: WorkspacePath) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let count = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw error(errno, path)
                }
                offset += count
            }
        }
    }

    /// Opens (creating as needed) the directories `components` below the root; returns a descriptor of the last.
    private func makeDirectories(_ rootFD: Int32, _ components: ArraySlice<String>, path: WorkspacePath) throws -> Int32 {
        let whole = components.isEmpty ? "." : components.joined(separator: "/")
        let fd = ab_open_beneath(rootFD, whole, AB_O_PATH | O_DIRECTORY, 0, 0)
        if fd >= 0 { return fd }
        guard errno == ENOENT else { throw Self.error(errno, path) }
        // Create the missing ones one by one, each resolved from the root again.
        var current = fcntl(rootFD, F_DUPFD_CLOEXEC, 0)
        for (index, component) in components.enumerated() {
            let prefix = components.prefix(index + 1).joined(separator: "/")
            var next = ab_open_beneath(rootFD, prefix, AB_O_PATH | O_DIRECTORY, 0, 0)
            if next < 0, errno == ENOENT {
                if mkdirat(current, component, 0o755) != 0, errno != EEXIST {
                    let code = errno
                    close(current)
                    throw Self.error(code, path)
                }
                next = ab_open_beneath(rootFD, prefix, AB_O_PATH | O_DIRECTORY, 0, 0)
                if next >= 0, let owner { fchownat(current, component, owner, owner, AT_SYMLINK_NOFOLLOW) }
            }
            let code = errno
            close(current)
            guard next >= 0 else { throw Self.error(code, path) }
            current = next
        }
        return current
    }

    // MARK: Changing

    /// Creates a directory; with `recursive`, its missing parents too, and an existing directory is no error.
    public func makeDirectory(_ path: WorkspacePath, recursive: Bool) throws {
        let location = try locate(path)
        try writable(location)
        try withRoot(location) { rootFD in
            if recursive {
                close(try makeDirectories(rootFD, location.relative[...], path: path))
                return
            }
            guard let name = location.name else { throw AgentBoxError(.conflict, "'\(path)' already exists") }
            let parent: Int32
            do {
                parent = try open(rootFD, location.parentPath, AB_O_PATH | O_DIRECTORY, path)
            } catch let error as AgentBoxError where error.code == .notFound {
                throw AgentBoxError(.notFound, "the parent of '\(path)' does not exist (create it too with recursive=true, or agentbox fs mkdir --parents)")
            }
            defer { close(parent) }
            guard mkdirat(parent, name, 0o755) == 0 else { throw Self.error(errno, path) }
            if let owner { fchownat(parent, name, owner, owner, AT_SYMLINK_NOFOLLOW) }
            try Self.syncDirectory(parent, path: path)
        }
    }

    /// Renames `from` to `to` (a symlink is moved, not followed); fails with `conflict` when `to` exists unless
    /// `overwrite`.
    public func move(from: WorkspacePath, to: WorkspacePath, overwrite: Bool) throws {
        let source = try locate(from), destination = try locate(to)
        try writable(source)
        try writable(destination)
        guard let fromName = source.name else { throw AgentBoxError(.invalidArgument, "'\(from)' is a root and cannot move") }
        guard let toName = destination.name else { throw AgentBoxError(.invalidArgument, "'\(to)' is a root") }
        try withRoot(source) { sourceRoot in
            try withRoot(destination) { destinationRoot in
                let fromParent = try open(sourceRoot, source.parentPath, AB_O_PATH | O_DIRECTORY, from)
                defer { close(fromParent) }
                let toParent = try open(destinationRoot, destination.parentPath, AB_O_PATH | O_DIRECTORY, to)
                defer { close(toParent) }
                guard ab_rename(fromParent, fromName, toParent, toName, overwrite ? 0 : 1) == 0 else {
                    let code = errno
                    throw Self.error(code, code == EEXIST || code == ENOTEMPTY || code == EISDIR || code == ENOTDIR ? to : from)
                }
                try Self.syncDirectory(toParent, path: to)
                try Self.syncDirectory(fromParent, path: from)
            }
        }
    }

    /// Deletes the entry at `path` (a symlink itself, never its target); a non-empty directory only when
    /// `recursive`.
    public func delete(_ path: WorkspacePath, recursive: Bool) throws {
        let location = try locate(path)
        try writable(location)
        guard let name = location.name else { throw AgentBoxError(.invalidArgument, "'\(path)' is a root and cannot be deleted") }
        try withRoot(location) { rootFD in
            let parent = try open(rootFD, location.parentPath, AB_O_PATH | O_DIRECTORY, path)
            defer { close(parent) }
            var info = Glibc.stat()
            guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { throw Self.error(errno, path) }
            if info.st_mode & S_IFMT == S_IFDIR {
                if recursive { try Self.removeContents(parent, name, path: path) }
                guard unlinkat(parent, name, AT_REMOVEDIR) == 0 else { throw Self.error(errno, path) }
            } else {
                guard unlinkat(parent, name, 0) == 0 else { throw Self.error(errno, path) }
            }
            try Self.syncDirectory(parent, path: path)
        }
    }

    /// Makes the entries of the directory `fd` (which may be an O_PATH descriptor, which cannot be flushed itself)
    /// durable: what a call answered is on disk.
    static func syncDirectory(_ fd: Int32, path: WorkspacePath) throws {
        let directory = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { throw error(errno, path) }
        defer { close(directory) }
        guard fsync(directory) == 0 else { throw error(errno, path) }
    }

    private static func removeContents(_ parent: Int32, _ name: String, path: WorkspacePath) throws {
        let directory = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directory >= 0 else { throw error(errno, path) }
        defer { close(directory) }
        for child in try names(in: directory, path: path) {
            var info = Glibc.stat()
            guard fstatat(directory, child, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR {
                try removeContents(directory, child, path: path.appending(child))
                guard unlinkat(directory, child, AT_REMOVEDIR) == 0 || errno == ENOENT else { throw error(errno, path.appending(child)) }
            } else {
                guard unlinkat(directory, child, 0) == 0 || errno == ENOENT else { throw error(errno, path.appending(child)) }
            }
        }
    }

    // MARK: Helpers

    static func type(_ mode: mode_t) -> FileType {
        switch mode & S_IFMT {
        case S_IFREG: .file
        case S_IFDIR: .directory
        case S_IFLNK: .symlink
        default: .other
        }
    }

    static func date(_ time: timespec) -> Date {
        Date(timeIntervalSince1970: Double(time.tv_sec) + Double(time.tv_nsec) / 1e9)
    }

    static func readLink(_ directory: Int32, _ name: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlinkat(directory, name, &buffer, 4096)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
