import AgentBoxAPI
import Foundation
import NIOCore
import NIOPosix

extension WorkspaceFiles {
    /// The first `maxBytes` bytes of the regular file at `path`, and its whole size: for callers that answer with
    /// the file in one message (the MCP `read_file` tool) and so must bound it. Reads on NIO's thread pool.
    public func readHead(_ path: WorkspacePath, maxBytes: Int) async throws -> (bytes: [UInt8], size: Int64) {
        let (fd, size) = try openForReading(path)
        defer { close(fd) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(min(Int64(maxBytes), size)))
        while bytes.count < maxBytes {
            let wanted = min(maxBytes - bytes.count, 1 << 20)
            let chunk = try await NIOThreadPool.singleton.runIfActive { try Self.readChunk(fd, maximum: wanted) }
            if chunk.readableBytes == 0 { break }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        return (bytes, size)
    }
}
