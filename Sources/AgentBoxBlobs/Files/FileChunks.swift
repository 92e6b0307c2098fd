import Crypto
import NIOCore

/// A file's contents as a sequence of chunks read on NIO's thread pool: an upload body that never holds the file.
///
/// With `expected`, it sends exactly that many bytes and, at the end, compares the digest of what it read with the
/// one the request was signed with; a difference (the file changed since it was hashed) throws, which aborts the
/// upload, so that a content-addressed object never holds other bytes than its name says.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let path: String
    let expected: (sha256: String, size: Int64)?

    struct AsyncIterator: AsyncIteratorProtocol {
        let path: String
        let expected: (sha256: String, size: Int64)?
        var file: LocalFile?
        var hasher = SHA256()
        var sent: Int64 = 0
        var finished = false

        mutating func next() async throws -> ByteBuffer? {
            if finished { return nil }
            if file == nil { file = try LocalFile.openForReading(path) }
            var want = LocalFile.chunkSize
            if let expected { want = Int(Swift.min(Int64(want), expected.size - sent)) }
            let chunk = want > 0 ? try await file!.readChunk(want) : ByteBuffer()
            if chunk.readableBytes == 0 {
                finished = true
                file = nil
                if let expected {
                    let digest = Hex.encode(hasher.finalize())
                    guard sent == expected.size, digest == expected.sha256 else {
                        throw BlobError(.integrity, "\(path) changed while it was uploaded (\(sent) bytes, sha256 \(digest); expected \(expected.size) bytes, \(expected.sha256))")
                    }
                }
                return nil
            }
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
            sent += Int64(chunk.readableBytes)
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(path: path, expected: expected) }
}
