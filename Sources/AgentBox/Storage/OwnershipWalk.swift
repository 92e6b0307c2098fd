import Foundation

/// Hands every entry of a tree to one owner (a fork's files to the fork's host uid), without following a symlink.
///
/// Like ``FileTreeCopy``, each step is relative to a directory already open (`openat` with `O_NOFOLLOW`,
/// `fchownat` with `AT_SYMLINK_NOFOLLOW`), so the tree's names cannot lead the walk outside it. Only inodes change:
/// the data blocks a fork shares with its snapshot stay shared. `chown` clears set-id bits of files, which mean
/// nothing in a workspace (its files are mounted `nosuid`, its processes run with `no_new_privs`).
struct OwnershipWalk {
    let owner: UInt32

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
                guard fchownat(directory, name, owner, owner, AT_SYMLINK_NOFOLLOW) == 0 else {
                    throw FileTreeCopy.failure("chown \(name)")
                }
            }
        }
    }

    private func own(_ fd: Int32) throws {
        guard fchown(fd, owner, owner) == 0 else { throw FileTreeCopy.failure("chown a directory") }
    }
}
