import Foundation

/// The checked steps of a restore into an empty directory, apart from the downloads.
///
/// A manifest comes from a store, so it is checked before anything is made: every path is relative with no empty,
/// `.` or `..` component, appears once, and has a parent that the manifest makes a directory. Symlinks are made
/// only after every file has been written, so no write goes through one; owners, modes and mtimes are set with
/// calls that do not follow symlinks (`chmod` only on what is not one). Blocking: run on NIO's thread pool.
struct RestorePlan: Sendable {
    typealias Entry = CheckpointManifest.Entry

    let manifest: CheckpointManifest
    let root: String

    init(manifest: CheckpointManifest, root: String) throws {
        guard manifest.version <= CheckpointManifest.currentVersion else {
            throw BlobError(.invalidArgument, "checkpoint manifest version \(manifest.version) is newer than this reader's")
        }
        var directories: Set<String> = ["."]
        var seen: Set<String> = []
        for entry in manifest.entries {
            guard seen.insert(entry.path).inserted else { throw BlobError(.invalidArgument, "the manifest names \(entry.path) twice") }
            if entry.path == "." {
                guard entry.kind == .directory else { throw BlobError(.invalidArgument, "the manifest's root is not a directory") }
                continue
            }
            let parts = entry.path.split(separator: "/", omittingEmptySubsequences: false)
            guard !entry.path.utf8.contains(0), parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
                throw BlobError(.invalidArgument, "the manifest has a path outside its root: \(entry.path)")
            }
            let parent = parts.count == 1 ? "." : parts.dropLast().joined(separator: "/")
            guard directories.contains(parent) else {
                throw BlobError(.invalidArgument, "the manifest names \(entry.path) before a directory \(parent)")
            }
            switch entry.kind {
            case .directory: directories.insert(entry.path)
            case .file: guard entry.size == 0 || entry.sha256.map(Hex.isSHA256) == true else {
                    throw BlobError(.invalidArgument, "the manifest's file \(entry.path) has no content address")
                }
            case .symlink: guard entry.target != nil else { throw BlobError(.invalidArgument, "the symlink \(entry.path) has no target") }
            case .whiteout: break
            }
        }
        self.manifest = manifest
        self.root = root
    }

    func path(_ entry: Entry) -> String { entry.path == "." ? root : root + "/" + entry.path }

    /// Makes the root (or checks that it is empty) and every directory, owner-only until ``finish(mapOwner:)``.
    func makeDirectories() throws {
        if mkdir(root, 0o700) != 0 {
            guard errno == EEXIST else { throw BlobError.posix("mkdir \(root)") }
            var info = stat()
            guard lstat(root, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw BlobError(.invalidArgument, "\(root) is not a directory")
            }
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: root), names.isEmpty else {
                throw BlobError(.invalidArgument, "a checkpoint is restored into an empty directory; \(root) is not empty")
            }
        }
        for entry in manifest.entries where entry.kind == .directory && entry.path != "." {
            guard mkdir(path(entry), 0o700) == 0 else { throw BlobError.posix("mkdir \(entry.path)") }
        }
    }

    /// Makes the whiteouts and symlinks, then sets owners, modes and mtimes: everything but directories first, then
    /// directories deepest first.
    func finish(mapOwner: @Sendable (uid_t, gid_t) -> (uid_t, gid_t)) throws {
        for entry in manifest.entries {
            switch entry.kind {
            case .whiteout:
                guard mknod(path(entry), S_IFCHR | 0o000, 0) == 0 else { throw BlobError.posix("mknod \(entry.path)") }
            case .symlink:
                guard symlink(entry.target!, path(entry)) == 0 else { throw BlobError.posix("symlink \(entry.path)") }
            case .file, .directory:
                break
            }
        }
        let asRoot = geteuid() == 0
        for entry in manifest.entries where entry.kind != .directory {
            try apply(entry, asRoot: asRoot, mapOwner: mapOwner)
        }
        for entry in manifest.entries.reversed() where entry.kind == .directory {
            try apply(entry, asRoot: asRoot, mapOwner: mapOwner)
        }
    }

    private func apply(_ entry: Entry, asRoot: Bool, mapOwner: @Sendable (uid_t, gid_t) -> (uid_t, gid_t)) throws {
        let target = path(entry)
        if asRoot {
            let owner = mapOwner(entry.uid, entry.gid)
            guard lchown(target, owner.0, owner.1) == 0 else { throw BlobError.posix("chown \(entry.path)") }
        }
        // After chown, which clears set-id bits. A symlink has no mode of its own on Linux.
        if entry.kind != .symlink {
            guard chmod(target, mode_t(entry.mode & 0o7777)) == 0 else { throw BlobError.posix("chmod \(entry.path)") }
        }
        let time = timespec(tv_sec: Int(entry.mtime / 1_000_000_000), tv_nsec: Int(entry.mtime % 1_000_000_000))
        let times = [time, time]
        guard utimensat(AT_FDCWD, target, times, AT_SYMLINK_NOFOLLOW) == 0 else { throw BlobError.posix("utimensat \(entry.path)") }
    }
}
