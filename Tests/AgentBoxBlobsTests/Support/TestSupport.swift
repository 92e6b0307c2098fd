import AgentBoxBlobs
import Crypto
import Foundation
import Synchronization

func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

/// A fresh directory under /tmp, removed by `remove()`.
struct TemporaryDirectory {
    let url: URL

    init(_ label: String = "blobs") throws {
        url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("agentbox-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    var path: String { url.path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// A ``BlobStore`` that counts the requests it passes on, to check what a checkpoint uploads.
final class CountingBlobStore: BlobStore {
    struct Counts: Sendable {
        var puts: [String] = []
        var heads = 0
        var gets = 0
    }

    let inner: any BlobStore
    private let counts = Mutex(Counts())

    init(_ inner: any BlobStore) { self.inner = inner }

    var snapshot: Counts { counts.withLock { $0 } }
    func reset() { counts.withLock { $0 = Counts() } }

    func put(_ key: String, data: Data) async throws {
        counts.withLock { $0.puts.append(key) }
        try await inner.put(key, data: data)
    }

    func put(_ key: String, contentsOf file: URL, sha256: String?) async throws {
        counts.withLock { $0.puts.append(key) }
        try await inner.put(key, contentsOf: file, sha256: sha256)
    }

    func get(_ key: String, maxBytes: Int) async throws -> Data {
        counts.withLock { $0.gets += 1 }
        return try await inner.get(key, maxBytes: maxBytes)
    }

    func get(_ key: String, into file: URL) async throws -> BlobDownload {
        counts.withLock { $0.gets += 1 }
        return try await inner.get(key, into: file)
    }

    func head(_ key: String) async throws -> BlobInfo? {
        counts.withLock { $0.heads += 1 }
        return try await inner.head(key)
    }

    func delete(_ key: String) async throws { try await inner.delete(key) }

    func list(prefix: String, continuation: String?) async throws -> BlobPage {
        try await inner.list(prefix: prefix, continuation: continuation)
    }

    func deleteAll(prefix: String) async throws -> Int { try await inner.deleteAll(prefix: prefix) }
}

/// Makes and compares file trees.
enum Tree {
    /// A tree with nested directories, an empty file, a symlink (to a name that does not exist, and one to a file),
    /// unusual modes, owners other than root (when running as root), and a set mtime.
    static func makeSample(at root: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/a/b/c", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/empty dir", withIntermediateDirectories: true)
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: root + "/hello.txt"))
        try Data().write(to: URL(fileURLWithPath: root + "/a/empty"))
        try Data(repeating: 7, count: 300_000).write(to: URL(fileURLWithPath: root + "/a/b/big.bin"))
        try Data("same content\n".utf8).write(to: URL(fileURLWithPath: root + "/a/b/c/copy1"))
        try Data("same content\n".utf8).write(to: URL(fileURLWithPath: root + "/a/b/c/copy2"))
        try Data("#!/bin/sh\necho hi\n".utf8).write(to: URL(fileURLWithPath: root + "/a/run.sh"))
        try Data("ünïcödé + = name\n".utf8).write(to: URL(fileURLWithPath: root + "/a/spaced ünï+=.txt"))
        symlink("../hello.txt", root + "/a/link-to-hello")
        symlink("/nonexistent/target", root + "/dangling")
        chmod(root + "/a/run.sh", 0o755)
        chmod(root + "/hello.txt", 0o640)
        chmod(root + "/a/b", 0o750)
        chmod(root + "/empty dir", 0o1777)
        if geteuid() == 0 {
            lchown(root + "/hello.txt", 101_000, 101_001)
            lchown(root + "/a/link-to-hello", 101_002, 101_002)
            lchown(root + "/a/b", 101_000, 101_000)
        }
        var times = [timespec(tv_sec: 1_600_000_000, tv_nsec: 123_456_789), timespec(tv_sec: 1_600_000_000, tv_nsec: 123_456_789)]
        utimensat(AT_FDCWD, root + "/a/b/big.bin", &times, 0)
    }

    /// Every entry of a tree: path → (type, mode, uid, gid, mtime ns, content or link target), without following
    /// symlinks. `id` maps the owners read (to compare a tree with a restore whose owners were mapped).
    static func describe(_ root: String, id: (UInt32) -> UInt32 = { $0 }) throws -> [String: String] {
        var out: [String: String] = [:]
        func visit(_ relative: String) throws {
            let path = relative.isEmpty ? root : root + "/" + relative
            var info = stat()
            guard lstat(path, &info) == 0 else { throw BlobError(.io, "lstat \(path)") }
            let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
            var line = "mode=\(String(info.st_mode, radix: 8)) uid=\(id(info.st_uid)) gid=\(id(info.st_gid))"
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                line += " mtime=\(mtime)"
                out[relative.isEmpty ? "." : relative] = line
                for name in try FileManager.default.contentsOfDirectory(atPath: path) {
                    try visit(relative.isEmpty ? name : relative + "/" + name)
                }
            case S_IFLNK:
                line += " -> \(try FileManager.default.destinationOfSymbolicLink(atPath: path)) mtime=\(mtime)"
                out[relative] = line
            default:
                line += " mtime=\(mtime) sha=\(sha256Hex(try Data(contentsOf: URL(fileURLWithPath: path))))"
                out[relative] = line
            }
        }
        try visit("")
        return out
    }
}
