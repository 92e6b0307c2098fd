import Foundation

/// One pass over a tree that describes every entry for a ``CheckpointManifest``, hashing the files that changed.
///
/// Each step is relative to a directory already open (`openat` with `O_NOFOLLOW`, `fstatat` with
/// `AT_SYMLINK_NOFOLLOW`): no symlink is followed, so the tree's names cannot lead the walk outside it. Sockets,
/// fifos and devices are skipped, except overlay whiteouts (character devices 0:0). A file whose size, mtime and
/// inode equal the previous checkpoint's entry keeps that entry's digest without being read. Blocking: run it on a
/// thread of NIO's pool.
struct TreeScan {
    typealias Entry = CheckpointManifest.Entry

    let root: String
    let previous: [String: Entry]
    let mapOwner: @Sendable (uid_t, gid_t) -> (uid_t, gid_t)

    /// What the scan found, and how much it had to read.
    struct Result {
        var entries: [Entry] = []
        var filesRead = 0
        var bytesRead: Int64 = 0
    }

    static let maxDepth = 512

    func run() throws -> Result {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw BlobError.posix("open \(root)") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw BlobError.posix("stat \(root)") }
        var result = Result()
        result.entries.append(entry(".", .directory, info))
        try walk(fd, relative: "", depth: 0, into: &result)
        return result
    }

    private func walk(_ directory: Int32, relative: String, depth: Int, into result: inout Result) throws {
        guard depth < Self.maxDepth else {
            throw BlobError(.invalidArgument, "\(root)/\(relative) is nested deeper than \(Self.maxDepth) directories")
        }
        for name in try Self.names(directory, path: relative) {
            let path = relative.isEmpty ? name : relative + "/" + name
            var info = stat()
            guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                if errno == ENOENT { continue }  // deleted since the listing
                throw BlobError.posix("stat \(path)")
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw BlobError.posix("open \(path)") }
                defer { close(child) }
                result.entries.append(entry(path, .directory, info))
                try walk(child, relative: path, depth: depth + 1, into: &result)
            case S_IFREG:
                result.entries.append(try file(directory, name: name, path: path, info, into: &result))
            case S_IFLNK:
                var entry = entry(path, .symlink, info)
                entry.target = try Self.readLink(directory, name: name, path: path)
                result.entries.append(entry)
            case S_IFCHR where info.st_rdev == 0:
                result.entries.append(entry(path, .whiteout, info))
            default:
                continue
            }
        }
    }

    /// A regular file's entry: the previous digest when (size, mtime, inode) are unchanged, else a read.
    private func file(_ directory: Int32, name: String, path: String, _ listed: stat, into result: inout Result) throws -> Entry {
        var entry = entry(path, .file, listed)
        entry.size = Int64(listed.st_size)
        entry.inode = UInt64(listed.st_ino)
        if let old = previous[path], old.kind == .file, let digest = old.sha256, old.size == entry.size, old.mtime == entry.mtime,
            old.inode == entry.inode
        {
            entry.sha256 = digest
            return entry
        }
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw BlobError.posix("open \(path)") }
        let file = LocalFile(adopting: fd, path: path)
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw BlobError.posix("stat \(path)") }
        entry = self.entry(path, .file, info)
        entry.inode = UInt64(info.st_ino)
        let digest = try file.digestBlocking()
        entry.sha256 = digest.sha256
        entry.size = digest.size
        result.filesRead += 1
        result.bytesRead += digest.size
        return entry
    }

    private func entry(_ path: String, _ kind: Entry.Kind, _ info: stat) -> Entry {
        let owner = mapOwner(info.st_uid, info.st_gid)
        return Entry(
            path: path, kind: kind, mode: UInt32(info.st_mode & 0o7777), uid: owner.0, gid: owner.1,
            mtime: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

    /// The names in an open directory, sorted bytewise (a stable manifest), without `.` and `..`.
    static func names(_ directory: Int32, path: String) throws -> [String] {
        let copy = dup(directory)
        guard copy >= 0, let stream = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw BlobError.posix("read directory \(path.isEmpty ? "." : path)")
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let item = readdir(stream) {
            // Read where it lies, never `item.pointee.d_name` as a value (AgentBoxSandbox's `directoryEntryName` says
            // why; this module depends on no other of AgentBox's).
            let name = String(cString: (UnsafeRawPointer(item) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func readLink(_ directory: Int32, name: String, path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlinkat(directory, name, &buffer, buffer.count - 1)
        guard count >= 0 else { throw BlobError.posix("readlink \(path)") }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
