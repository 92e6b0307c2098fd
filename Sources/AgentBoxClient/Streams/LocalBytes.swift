import Foundation
import NIOCore
import NIOPosix

/// Moving bytes between a local `FileHandle` and a request or response body, off the cooperative pool.
///
/// Reads and writes of a file, pipe or terminal block, so they run on NIO's blocking thread pool. Reading is
/// pulled: the next chunk is read only when the HTTP client asks for it, so at most one chunk waits in memory
/// however slow the server (the bounded buffer the upload needs).
enum LocalBytes {
    /// How much one read takes from the handle.
    static let chunkSize = 256 << 10

    /// The bytes `handle` reads, chunk by chunk, until its end.
    struct Chunks: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let handle: FileHandle

        struct AsyncIterator: AsyncIteratorProtocol {
            let handle: FileHandle
            var ended = false

            mutating func next() async throws -> ByteBuffer? {
                guard !ended else { return nil }
                let handle = handle
                let data = try await NIOThreadPool.singleton.runIfActive { try handle.read(upToCount: LocalBytes.chunkSize) ?? Data() }
                if data.isEmpty {
                    ended = true
                    return nil
                }
                return ByteBuffer(bytes: data)
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(handle: handle) }
    }

    /// Writes every chunk of `body` to `handle` as it arrives; returns how many bytes were written.
    static func write<Body: AsyncSequence>(_ body: Body, to handle: FileHandle) async throws -> Int64 where Body.Element == ByteBuffer {
        var written: Int64 = 0
        for try await chunk in body {
            let data = Data(chunk.readableBytesView)
            try await NIOThreadPool.singleton.runIfActive { try handle.write(contentsOf: data) }
            written += Int64(data.count)
        }
        return written
    }
}
