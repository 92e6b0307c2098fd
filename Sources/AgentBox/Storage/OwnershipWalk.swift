import AgentBoxSandbox
import Foundation

/// Hands every entry of a tree to a workspace's ids (a fork's files to the fork's range), without following a symlink:
/// an id of another workspace's range becomes the same inside id of this one's; the host's root (the owner of an
/// overlay's whiteouts) stays; any other id (a workspace from before id ranges, which had one uid) becomes the agent.
///
/// Like ``FileTreeCopy``, each step is relative to a directory already open (`openat` with `O_NOFOLLOW`,
/// `fchownat` with `AT_SYMLINK_NOFOLLOW`), so the tree's names cannot lead the walk outside it. Only inodes change:
/// the data blocks a fork shares with its snapshot stay shared. `chown` clears set-id bits of files, which mean
/// nothing in a workspace (its files are mounted `nosuid`, its processes run with `no_new_privs`).
struct OwnershipWalk {
    let ids: WorkspaceIDs
    /// The first host id of any workspace's range (the server's `sandboxUIDBase`).
    let base: UInt32

    /// The id that host id `id` becomes.
    func target(_ id: UInt32) -> UInt32 {
        if id == 0 { return 0 }
        if id >= base {
            let offset = (id - base) % WorkspaceIDs.slot
            if let inside = WorkspaceIDs(start: id - offset).inside(id), let mapped = ids.host(inside) { return mapped }
        }
        return ids.start + WorkspaceIDs.agent
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
