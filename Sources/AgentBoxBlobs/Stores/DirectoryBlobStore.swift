import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

/// A ``BlobStore`` in a local directory: a key is a file at that relative path (`blobs/ab12…` is
/// `<root>/blobs/ab12…`). For tests, and for a single machine that keeps checkpoints on another disk.
///
/// Writes go to `<root>/.partial/` and are renamed into place (after `fsync` when `durable`), so a reader never sees
/// half an object. Keys are relative paths: no empty, `.` or `..` component, and not under `.partial/`; a key cannot
/// also be the directory of another (`a` and `a/b`), which S3 allows.
public struct DirectoryBlobStore: BlobStore {
    public let root: URL
    public let durable: Bool

    /// Makes `root` if it does not exist.
    public init(root: URL, durable: Bool = true) throws {
        self.root = root
        self.durable = durable
        try FileManager.default.createDirectory(at: root.appendingPathComponent(Self.partial), withIntermediateDirectories: true)
    }

    static let partial = ".partial"
    static let pageSize = 1000

    public func put(_ key: String, data: Data) async throws {
        let target = try path(key)
        try await NIOThreadPool.singleton.runIfActive {
            try self.install(target) { file in
                try file.writeBlocking(ByteBuffer(bytes: data))
            }
        }
    }

    public func put(_ key: String, contentsOf file: URL, sha256: String?) async throws {
        let target = try path(key)
        let source = file.path
        try await NIOThreadPool.singleton.runIfActive {
            let input = try LocalFile.openForReading(source)
            try self.install(target) { output in
                var hasher = SHA256()
                while true {
                    let chunk = try input.readBlocking(LocalFile.chunkSize)
                    if chunk.readableBytes == 0 { break }
                    chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    try output.writeBlocking(chunk)
                }
                let digest = Hex.encode(hasher.finalize())
                if let sha256, digest != sha256 {
                    throw BlobError(.integrity, "\(source) changed after it was hashed (sha256 \(digest), expected \(sha256))")
                }
            }
        }
    }

    public func get(_ key: String, maxBytes: Int) async throws -> Data {
        let source = try path(key)
        return try await NIOThreadPool.singleton.runIfActive {
            let file = try LocalFile.openForReading(source)
            let size = try file.size()
            guard size <= Int64(maxBytes) else { throw BlobError(.tooLarge, "\(key) has \(size) bytes, more than \(maxBytes)") }
            var data = Data()
            while true {
                let chunk = try file.readBlocking(LocalFile.chunkSize)
                if chunk.readableBytes == 0 { break }
                data.append(contentsOf: chunk.readableBytesView)
                guard data.count <= maxBytes else { throw BlobError(.tooLarge, "\(key) has more than \(maxBytes) bytes") }
            }
            return data
        }
    }

    @discardableResult
    public func get(_ key: String, into file: URL) async throws -> BlobDownload {
        let source = try path(key)
        let target = file.path
        return try await NIOThreadPool.singleton.runIfActive {
            let input = try LocalFile.openForReading(source)
            let output = try LocalFile.create(target)
            var hasher = SHA256()
            var size: Int64 = 0
            while true {
                let chunk = try input.readBlocking(LocalFile.chunkSize)
                if chunk.readableBytes == 0 { break }
                chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                size += Int64(chunk.readableBytes)
                try output.writeBlocking(chunk)
            }
            return BlobDownload(size: size, sha256: Hex.encode(hasher.finalize()))
        }
    }

    public func head(_ key: String) async throws -> BlobInfo? {
        let source = try path(key)
        return try await NIOThreadPool.singleton.runIfActive {
            var info = stat()
            guard lstat(source, &info) == 0 else {
                if Glibc.errno == ENOENT || Glibc.errno == ENOTDIR { return nil }
                throw BlobError.posix("stat \(source)")
            }
            guard info.st_mode & S_IFMT == S_IFREG else { return nil }
            return BlobInfo(key: key, size: Int64(info.st_size))
        }
    }

    public func delete(_ key: String) async throws {
        let target = try path(key)
        try await NIOThreadPool.singleton.runIfActive {
            guard unlink(target) == 0 || Glibc.errno == ENOENT || Glibc.errno == ENOTDIR else {
                throw BlobError.posix("unlink \(target)")
            }
        }
    }

    public func list(prefix: String, continuation: String?) async throws -> BlobPage {
        let keys = try await NIOThreadPool.singleton.runIfActive { try self.keys(prefix: prefix) }
        var start = 0
        if let continuation {
            // The first key after the token (binary search; the keys are sorted bytewise).
            var low = 0
            var high = keys.count
            while low < high {
                let middle = (low + high) / 2
                if Self.precedesOrEqual(keys[middle].key, continuation) { low = middle + 1 } else { high = middle }
            }
            start = low
        }
        let end = min(keys.count, start + Self.pageSize)
        let page = Array(keys[start..<end])
        return BlobPage(objects: page, next: end < keys.count ? page.last?.key : nil)
    }

    @discardableResult
    public func deleteAll(prefix: String) async throws -> Int {
        let keys = try await NIOThreadPool.singleton.runIfActive { try self.keys(prefix: prefix) }
        for key in keys { try await delete(key.key) }
        return keys.count
    }

    // MARK: Files

    /// The file of a key, after checking that the key is a relative path that stays under the root.
    func path(_ key: String) throws -> String {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !key.isEmpty, !key.utf8.contains(0), parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }),
            parts.first != Substring(Self.partial)
        else { throw BlobError(.invalidArgument, "not a key of a directory store: \(key)") }
        return root.path + "/" + key
    }

    /// Writes a new file in `.partial/` with `fill`, then renames it to `target` (making its parents).
    private func install(_ target: String, fill: (LocalFile) throws -> Void) throws {
        let temporary = root.path + "/\(Self.partial)/\(UUID().uuidString)"
        do {
            let file = try LocalFile.create(temporary, mode: 0o644, exclusive: true)
            try fill(file)
            if durable && fsync(file.fd) != 0 { throw BlobError.posix("fsync \(temporary)") }
            let parent = (target as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
            guard rename(temporary, target) == 0 else { throw BlobError.posix("rename to \(target)") }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// The objects under `prefix`, sorted bytewise by key. The walk starts at the prefix's directory.
    private func keys(prefix: String) throws -> [BlobInfo] {
        let directory = prefix.contains("/") ? String(prefix[..<prefix.lastIndex(of: "/")!]) : ""
        var found: [BlobInfo] = []
        func walk(_ relative: String) throws {
            let absolute = relative.isEmpty ? root.path : root.path + "/" + relative
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: absolute) else { return }
            for name in names {
                if relative.isEmpty && name == Self.partial { continue }
                let key = relative.isEmpty ? name : relative + "/" + name
                // Prune subtrees that cannot hold the prefix.
                guard key.hasPrefix(prefix) || prefix.hasPrefix(key + "/") else { continue }
                var info = stat()
                guard lstat(absolute + "/" + name, &info) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR: try walk(key)
                case S_IFREG: if key.hasPrefix(prefix) { found.append(BlobInfo(key: key, size: Int64(info.st_size))) }
                default: break
                }
            }
        }
        try walk(directory.split(separator: "/").joined(separator: "/"))
        return found.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
    }

    private static func precedesOrEqual(_ a: String, _ b: String) -> Bool {
        !Array(b.utf8).lexicographicallyPrecedes(Array(a.utf8))
    }
}
