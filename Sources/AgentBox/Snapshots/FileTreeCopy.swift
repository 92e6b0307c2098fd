import AgentBoxSandbox
import CAgentBoxSandbox
import Foundation

/// Copies a directory tree that a hostile workspace controls, without ever following a symlink.
///
/// Every step is relative to a directory already open (`openat` with `O_NOFOLLOW`), so a process in the workspace
/// that swaps a directory for a symlink to `/etc` during the copy makes that entry fail, never leads the copy
/// outside the tree. Regular files are reflinked where the file system shares blocks (btrfs, XFS), else copied in
/// the kernel (`copy_file_range`). Symlinks are recreated as symlinks; modes, owners and modification times are
/// kept (or owners handed to a workspace's ids); sockets, devices and FIFOs are skipped.
///
/// No package offers a walk that is safe against such swaps, so this one is written by hand.
struct FileTreeCopy {
    /// What a copy did.
    struct Outcome: Sendable, Equatable {
        /// The bytes of the regular files.
        var bytes: Int64 = 0
        /// The bytes that were reflinked rather than copied.
        var sharedBytes: Int64 = 0
        var files = 0
        var directories = 0
    }

    /// Hands every entry to a workspace's ids (``OwnershipWalk/target(_:)``); `nil` keeps the source's owners.
    let ownership: OwnershipWalk?

    private func uid(_ info: stat) -> UInt32 { ownership?.target(info.st_uid) ?? info.st_uid }
    private func gid(_ info: stat) -> UInt32 { ownership?.target(info.st_gid) ?? info.st_gid }
    /// The deepest directory nesting copied (deeper entries fail the copy rather than exhaust the stack).
    static let maxDepth = 256

    /// Copies the contents of the directory at `source` into the new directory `destination` (which must not exist).
    func copy(from source: String, to destination: String) throws -> Outcome {
        let sourceFD = open(source, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard sourceFD >= 0 else { throw Self.failure("open \(source)") }
        defer { close(sourceFD) }
        var info = Glibc.stat()
        guard fstat(sourceFD, &info) == 0 else { throw Self.failure("stat \(source)") }
        guard mkdir(destination, 0o700) == 0 else { throw Self.failure("create \(destination)") }
        let destinationFD = open(destination, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard destinationFD >= 0 else { throw Self.failure("open \(destination)") }
        defer { close(destinationFD) }
        var outcome = Outcome()
        try copyContents(of: sourceFD, into: destinationFD, depth: 0, outcome: &outcome)
        try applyMetadata(destinationFD, info)
        return outcome
    }

    private func copyContents(of source: Int32, into destination: Int32, depth: Int, outcome: inout Outcome) throws {
        guard depth < Self.maxDepth else { throw AgentBoxError(.invalidArgument, "the tree is nested deeper than \(Self.maxDepth) directories") }
        for name in try Self.names(source) {
            var info = Glibc.stat()
            guard fstatat(source, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                if errno == ENOENT { continue }  // removed meanwhile
                throw Self.failure("stat \(name)")
            }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                let child = openat(source, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else {
                    if errno == ENOENT || errno == ELOOP || errno == ENOTDIR { continue }  // swapped meanwhile
                    throw Self.failure("open \(name)")
                }
                defer { close(child) }
                guard mkdirat(destination, name, 0o700) == 0 else { throw Self.failure("create \(name)") }
                let copy = openat(destination, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard copy >= 0 else { throw Self.failure("open \(name)") }
                defer { close(copy) }
                try copyContents(of: child, into: copy, depth: depth + 1, outcome: &outcome)
                var current = Glibc.stat()
                try applyMetadata(copy, fstat(child, &current) == 0 ? current : info)
                outcome.directories += 1
            case S_IFREG:
                let input = openat(source, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
                guard input >= 0 else {
                    if errno == ENOENT || errno == ELOOP { continue }
                    throw Self.failure("open \(name)")
                }
                defer { close(input) }
                var current = Glibc.stat()
                // Opened after the stat: it must still be a regular file (not a FIFO swapped in, which would block).
                guard fstat(input, &current) == 0, current.st_mode & S_IFMT == S_IFREG else { continue }
                let output = openat(destination, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                guard output >= 0 else { throw Self.failure("create \(name)") }
                defer { close(output) }
                let result = ab_clone_file(input, output)
                guard result >= 0 else { throw Self.failure("copy \(name)") }
                try applyMetadata(output, current)
                outcome.bytes += Int64(current.st_size)
                if result == 1 { outcome.sharedBytes += Int64(current.st_size) }
                outcome.files += 1
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let count = readlinkat(source, name, &buffer, Int(PATH_MAX))
                guard count >= 0 else { continue }
                buffer[count] = 0
                guard symlinkat(buffer, destination, name) == 0 else { throw Self.failure("link \(name)") }
                fchownat(destination, name, uid(info), gid(info), AT_SYMLINK_NOFOLLOW)
                var times = [info.st_atim, info.st_mtim]
                utimensat(destination, name, &times, AT_SYMLINK_NOFOLLOW)
            case S_IFCHR where info.st_rdev == 0:
                // An overlay's whiteout (a file of the system layer's lower layers that the workspace deleted).
                guard mknodat(destination, name, S_IFCHR, 0) == 0 else { throw Self.failure("whiteout \(name)") }
            default:
                continue  // sockets, devices and FIFOs belong to a running workspace, not to its files
            }
        }
    }

    /// Sets mode, owner and times of the open `fd` from `info` (the owner through ``ownership`` when set).
    private func applyMetadata(_ fd: Int32, _ info: stat) throws {
        // The owner first: chown clears set-id bits, and fchmod restores the mode exactly.
        _ = fchown(fd, uid(info), gid(info))
        guard fchmod(fd, info.st_mode & 0o7777) == 0 else { throw Self.failure("chmod") }
        var times = [info.st_atim, info.st_mtim]
        _ = futimens(fd, &times)
    }

    /// The names in the directory `fd` (not `.` and `..`).
    static func names(_ fd: Int32) throws -> [String] {
        guard let names = readNames(fd) else { throw failure("read a directory") }
        return names
    }

    /// The names in the directory `fd` (not `.` and `..`), or `nil` with `errno` set.
    static func readNames(_ fd: Int32) -> [String]? {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { return nil }
        guard let stream = fdopendir(copy) else {
            let code = errno
            close(copy)
            errno = code
            return nil
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = directoryEntryName(entry)
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes `path` and everything below it, never following a symlink. Absent is no error.
    static func remove(_ path: String) throws {
        var info = Glibc.stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw failure("stat \(path)")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            guard unlink(path) == 0 || errno == ENOENT else { throw failure("remove \(path)") }
            return
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open \(path)") }
        do {
            defer { close(fd) }
            try removeContents(fd)
        }
        guard rmdir(path) == 0 || errno == ENOENT else { throw failure("remove \(path)") }
    }

    private static func removeContents(_ directory: Int32) throws {
        for name in try names(directory) {
            if unlinkat(directory, name, 0) == 0 || errno == ENOENT { continue }
            guard errno == EISDIR else { throw failure("remove \(name)") }
            let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard child >= 0 else { throw failure("open \(name)") }
            do {
                defer { close(child) }
                try removeContents(child)
            }
            guard unlinkat(directory, name, AT_REMOVEDIR) == 0 || errno == ENOENT else { throw failure("remove \(name)") }
        }
    }

    static func failure(_ what: String) -> AgentBoxError {
        let code = errno
        if code == ENOSPC || code == EDQUOT { return AgentBoxError(.storageFull, "no space left to \(what)") }
        return AgentBoxError(.internalError, "cannot \(what): \(String(cString: strerror(code)))")
    }
}
