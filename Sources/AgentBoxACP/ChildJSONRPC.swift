import Foundation

/// A child process that speaks line-based JSON-RPC on its stdio: Codex's app server, a stdio MCP server.
final class ChildJSONRPC: Sendable {
    private let process: Process
    let connection: JSONRPCConnection

    /// Starts `path`; its environment is this process's with `extra` over it. A line longer than `maximumLine`
    /// bytes ends the connection.
    init(path: String, arguments: [String], environment extra: [String: String], maximumLine: Int = 64 << 20) throws {
        _ = Self.ignoreBrokenPipes
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.runWithDefaultSignalMask()
        self.process = process
        let writer = stdin.fileHandleForWriting
        let connection = JSONRPCConnection { line in try writer.write(contentsOf: line) }
        self.connection = connection
        let reader = stdout.fileHandleForReading
        Thread.detachNewThread {
            StandardIO.feed(descriptor: reader.fileDescriptor, into: connection, maximumLine: maximumLine)
            Task { await connection.close() }
        }
    }

    /// A child that exits (or closes its stdin) while a message is on its way to it must fail that write, not end
    /// this whole process with SIGPIPE.
    private static let ignoreBrokenPipes: Void = { signal(SIGPIPE, SIG_IGN) }()

    func terminate() {
        if process.isRunning { process.terminate() }
    }

    /// Ends the child at once (SIGKILL). Foundation reaps it when its SIGCHLD comes; no wait here: its
    /// `waitUntilExit` spins on a run loop until then, and in a process where other code had taken SIGCHLD over (the
    /// unit tests, which also run sandboxes) it spun at 100% of a core for ever on a child long gone.
    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }
}
