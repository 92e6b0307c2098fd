import Foundation

/// The bytes a directory tree takes on disk (allocated blocks, as `du` counts them), for a workspace whose files are
/// not in the disk pool, which keeps that figure itself (``DiskPool/usage(group:)``).
///
/// Like ``OwnershipWalk``, each step is relative to a directory already open, without following a symlink; a file
/// with several links counts once. Its cost grows with the number of files, so callers run it on a thread pool.
enum DiskUsageWalk {
    /// The allocated bytes of `path` and everything below it; what cannot be read counts 0.
    static func allocatedBytes(_ path: String) -> Int64 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return 0 }
        var linked: Set<[UInt64]> = []
        return Int64(info.st_blocks) * 512 + walk(fd, depth: 0, linked: &linked)
    }

    private static func walk(_ directory: Int32, depth: Int, linked: inout Set<[UInt64]>) -> Int64 {
        guard depth < FileTreeCopy.maxDepth, let names = FileTreeCopy.readNames(directory) else { return 0 }
        var total: Int64 = 0
        for name in names {
            var info = stat()
            guard fstatat(directory, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if info.st_mode & S_IFMT != S_IFDIR, info.st_nlink > 1,
                !linked.insert([UInt64(info.st_dev), UInt64(info.st_ino)]).inserted
            {
                continue
            }
            total += Int64(info.st_blocks) * 512
            if info.st_mode & S_IFMT == S_IFDIR {
                let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { continue }
                total += walk(child, depth: depth + 1, linked: &linked)
                close(child)
            }
        }
        return total
    }
}
