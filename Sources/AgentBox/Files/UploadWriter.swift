import AgentBoxAPI
import CAgentBoxSandbox
import Foundation
import NIOCore
import NIOPosix

/// Writes an upload's body to a file on NIO's thread pool. Small chunks are gathered into writes of about 1 MiB;
/// one write runs while the next batch gathers, so the network and the disk work at once; and the kernel is asked
/// to start writing back every 8 MiB, so that the final fsync finds little left to do. At most two batches are in
/// memory, whatever the file's size.
struct UploadWriter {
    static let batchBytes = 1 << 20
    static let writebackStride: Int64 = 8 << 20

    let fd: Int32
    let path: WorkspacePath
    /// Bytes handed to writes so far.
    private(set) var submitted: Int64 = 0
    private var writtenBack: Int64 = 0
    private var batch = ByteBuffer()
    private var inFlight: Task<Void, any Error>?

    init(fd: Int32, path: WorkspacePath) {
        self.fd = fd
        self.path = path
    }

    mutating func append(_ chunk: ByteBuffer) async throws {
        if batch.readableBytes == 0, chunk.readableBytes >= Self.batchBytes / 4 {
            try await submit(chunk)  // large enough to write as it is, without a copy
            return
        }
        var chunk = chunk
        batch.writeBuffer(&chunk)
        if batch.readableBytes >= Self.batchBytes {
            try await submit(batch)
            batch = ByteBuffer()
        }
    }

    /// Writes what is left and waits for every write.
    mutating func finish() async throws {
        if batch.readableBytes > 0 { try await submit(batch) }
        batch = ByteBuffer()
        try await inFlight?.value
        inFlight = nil
    }

    /// Waits for the write in flight, if any, ignoring its outcome.
    mutating func abandon() async {
        _ = try? await inFlight?.value
        inFlight = nil
    }

    private mutating func submit(_ buffer: ByteBuffer) async throws {
        try await inFlight?.value
        let (fd, path, start) = (fd, path, submitted)
        let end = start + Int64(buffer.readableBytes)
        let writeBackFrom: Int64? = end - writtenBack >= Self.writebackStride ? writtenBack : nil
        if writeBackFrom != nil { writtenBack = end }
        submitted = end
        inFlight = Task {
            try await NIOThreadPool.singleton.runIfActive {
                try WorkspaceFiles.writeAll(fd, buffer, path: path)
                if let from = writeBackFrom { _ = ab_start_writeback(fd, from, end - from) }
            }
        }
    }
}
