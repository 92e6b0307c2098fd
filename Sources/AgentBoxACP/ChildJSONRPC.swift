import Foundation

/// A child process that speaks line-based JSON-RPC on its stdio: Codex's app server, a stdio MCP server.
final class ChildJSONRPC: Sendable {
    private let program: ChildProgram
    let connection: JSONRPCConnection

    /// Starts `path` (``ChildProgram``); its environment is this process's with `extra` over it. A line longer than
    /// `maximumLine` bytes ends the connection.
    init(path: String, arguments: [String], environment extra: [String: String], maximumLine: Int = 64 << 20) async throws {
        let program = try await ChildProgram.start(path: path, arguments: arguments, environment: extra)
        self.program = program
        let writer = program.input
        let connection = JSONRPCConnection { line in try writer.write(contentsOf: line) }
        self.connection = connection
        let reader = program.output
        Thread.detachNewThread {
            StandardIO.feed(descriptor: reader.fileDescriptor, into: connection, maximumLine: maximumLine)
            Task { await connection.close() }
        }
    }

    func terminate() { program.signal(SIGTERM) }

    /// Ends the child at once (SIGKILL).
    func kill() { program.signal(SIGKILL) }
}
