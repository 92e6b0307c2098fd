import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

/// An open file descriptor that closes itself; one owner at a time (a streaming body, a download), hence unchecked.
final class LocalFile: @unchecked Sendable {
    let fd: Int32
    let path: String

    /// Takes ownership of an open descriptor.
    init(adopting fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Opens a regular file for reading, never through a symlink at its last component.
    static func openForReading(_ path: String) throws -> LocalFile {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw BlobError.posix("open \(path)") }
        return LocalFile(adopting: fd, path: path)
    }

    /// Creates (or truncates) a file for writing, never through a symlink at its last component.
    static func create(_ path: String, mode: mode_t = 0o600, exclusive: Bool = false) throws -> LocalFile {
        let flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (exclusive ? O_EXCL : O_TRUNC)
        let fd = open(path, flags, mode)
        guard fd >= 0 else { throw BlobError.posix("create \(path)") }
        return LocalFile(adopting: fd, path: path)
    }

    /// The size of the open file.
    func size() throws -> Int64 {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw BlobError.posix("stat \(path)") }
        return Int64(info.st_size)
    }

    /// Reads up to `count` bytes at the current offset; an empty buffer at the end of the file. Blocking: call it on
    /// a thread of NIO's pool (``readChunk(_:)``).
    func readBlocking(_ count: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer -> Int in
            while true {
                let n = read(fd, pointer.baseAddress, count)
                if n >= 0 { return n }
                if Glibc.errno == EINTR { continue }
                throw BlobError.posix("read \(path)")
            }
        }
        return buffer
    }

    /// Writes all of `buffer`. Blocking.
    func writeBlocking(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if Glibc.errno == EINTR { continue }
                    throw BlobError.posix("write \(path)")
                }
                offset += n
            }
        }
    }

    /// Reads the next chunk on NIO's thread pool.
    func readChunk(_ count: Int) async throws -> ByteBuffer {
        try await NIOThreadPool.singleton.runIfActive { try self.readBlocking(count) }
    }

    /// Writes a chunk on NIO's thread pool.
    func writeChunk(_ buffer: ByteBuffer) async throws {
        try await NIOThreadPool.singleton.runIfActive { try self.writeBlocking(buffer) }
    }

    /// The SHA-256 (lowercase hex) and the length of what is left to read. Blocking.
    func digestBlocking(chunk: Int = LocalFile.chunkSize) throws -> (sha256: String, size: Int64) {
        var hasher = SHA256()
        var size: Int64 = 0
        while true {
            let buffer = try readBlocking(chunk)
            if buffer.readableBytes == 0 { break }
            buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            size += Int64(buffer.readableBytes)
        }
        return (Hex.encode(hasher.finalize()), size)
    }

    /// How much one read or one body part carries: large enough for few system calls, small enough that eight
    /// uploads at once hold 8 MiB.
    static let chunkSize = 1 << 20
}

extension BlobError {
    /// A failed system call, with its errno.
    static func posix(_ what: String, _ code: Int32 = Glibc.errno) -> BlobError {
        let kind: Code = code == ENOENT ? .notFound : .io
        return BlobError(kind, "\(what): \(String(cString: strerror(code)))", errno: code)
    }
}

/// Lowercase hexadecimal, as SigV4 and content addresses spell digests.
enum Hex {
    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `text` is a SHA-256 in lowercase hex (a content address).
    static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
