import AgentBoxSandbox
import Foundation

/// Hands every entry of a tree to other ids, without following a symlink: a fork's files to the fork's range, a
/// workspace's files to the canonical ids an image keeps (the ids as seen inside), an image's files to a new
/// workspace's range.
///
/// From workspace ranges: an id of any workspace's range becomes the same inside id of the destination; the host's
/// root (the owner of an overlay's whiteouts) stays; any other id (a workspace from before id ranges, which had one
/// uid) becomes the agent (1000 inside).
///
/// Like ``FileTreeCopy``, each step is relative to a directory already open (`openat` with `O_NOFOLLOW`,
/// `fchownat` with `AT_SYMLINK_NOFOLLOW`), so the tree's names cannot lead the walk outside it. Only inodes change:
/// the data blocks a fork shares with its snapshot stay shared. `chown` clears set-id bits of files, which mean
/// nothing in a workspace (its files are mounted `nosuid`, its processes run with `no_new_privs`).
struct OwnershipWalk {
    enum Source: Sendable {
        /// Host ids of workspace ranges that start at `base` (the server's `sandboxUIDBase`).
        case workspaceRanges(base: UInt32)
        /// Inside ids, as an image keeps them.
        case canonical
    }

    enum Destination: Sendable {
        case workspace(WorkspaceIDs)
        case canonical
    }

    let source: Source
    let destination: Destination

    init(ids: WorkspaceIDs, base: UInt32) {
        source = .workspaceRanges(base: base)
        destination = .workspace(ids)
    }

    init(from source: Source, to destination: Destination) {
        self.source = source
        self.destination = destination
    }

    /// The id that `id` becomes.
    func target(_ id: UInt32) -> UInt32 {
        var inside: UInt32 = WorkspaceIDs.agent
        switch source {
        case .canonical:
            inside = id
        case .workspaceRanges(let base):
            if id == 0 { return 0 }
            if id >= base {
                let offset = (id - base) % WorkspaceIDs.slot
                if let mapped = WorkspaceIDs(start: id - offset).inside(id) { inside = mapped }
            }
        }
        switch destination {
        case .canonical: return inside
        case .workspace(let ids): return ids.host(inside) ?? ids.host(65534)!
        }
    }

    /// Changes the owner of `path` and of everything below it.
    func apply(to path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw FileTreeCopy.failure("open \(path)") }
        defer { close(fd) }
        try own(fd)
        try walk(fd, depth: 0)
    }

    private func walk(_ directory: Int32, depth: Int) throws {
        guard depth < FileTreeCopy.maxDepth else {
            throw AgentBoxError(.invalidArgument, "the tree is nested deeper than \(FileTreeCopy.maxDepth) directories")
        }
        for name in try FileTreeCopy.names(directory) {
            var info = stat()
            guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { throw FileTreeCopy.failure("open \(name)") }
                defer { close(child) }
                try own(child)
                try walk(child, depth: depth + 1)
            default:
                guard fchownat(directory, name, target(info.st_uid), target(info.st_gid), AT_SYMLINK_NOFOLLOW) == 0 else {
                    throw FileTreeCopy.failure("chown \(name)")
                }
            }
        }
    }

    private func own(_ fd: Int32) throws {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileTreeCopy.failure("stat a directory") }
        // chown clears a directory's set-group-id bit: put the mode back.
        guard fchown(fd, target(info.st_uid), target(info.st_gid)) == 0, fchmod(fd, info.st_mode & 0o7777) == 0 else {
            throw FileTreeCopy.failure("chown a directory")
        }
    }
}
