import AgentBoxAPI
import NIOCore
import NIOHTTP1

/// Processes: `exec` (to completion) and `processes` (started and left running).
extension AgentBoxClient {
    /// Runs a shell command line to completion in the workspace (booting it if it sleeps).
    ///
    /// ```swift
    /// let result = try await client.exec("demo", ExecRequest(command: "ls | wc -l", cwd: "/workspace"))
    /// print(result.exitCode, String(decoding: result.stdoutBytes, as: UTF8.self))
    /// ```
    public func exec(_ key: String, _ request: ExecRequest) async throws -> ExecResult {
        // Both streams' output, each up to maxOutputBytes, as JSON: up to 6 bytes a byte (\u0000), or 4/3 in base64.
        let output = request.maxOutputBytes ?? (1 << 20)
        let limit = min(1 << 30, max(64 << 20, 2 * output * 6 + (1 << 20)))
        return try decode(
            ExecResult.self,
            try await perform(
                .POST, Self.workspacePath(key) + "/exec", json: request, timeout: deadline(waitingAtMost: request.timeoutMs), responseLimit: limit
            ).body)
    }

    /// How long a call that waits for a command may take: the command's own `timeoutMs` and a minute more (a boot,
    /// the answer's transfer), or a day when it has none (an exec without one runs until it ends). The client's
    /// ``timeout`` (60 s) ended every longer exec with `deadlineExceeded`, and the command ran on unseen.
    func deadline(waitingAtMost milliseconds: Int?) -> TimeAmount {
        guard let milliseconds, milliseconds > 0 else { return max(timeout, .hours(24)) }
        return max(timeout, .milliseconds(Int64(min(milliseconds, 24 * 3_600_000))) + .seconds(60))
    }

    /// Runs `command` (a shell command line) to completion.
    public func exec(_ key: String, command: String, timeoutMs: Int? = nil) async throws -> ExecResult {
        try await exec(key, ExecRequest(command: command, timeoutMs: timeoutMs))
    }

    /// Starts a program without a shell and leaves it running.
    ///
    /// ```swift
    /// let server = try await client.spawn("demo", SpawnRequest(command: "python3", args: ["-m", "http.server", "8000"]))
    /// ```
    public func spawn(_ key: String, _ request: SpawnRequest) async throws -> WorkspaceProcess {
        try await send(.POST, Self.workspacePath(key) + "/processes", json: request)
    }

    /// The workspace's processes, running and recently exited.
    public func processes(_ key: String) async throws -> ProcessList {
        try await send(.GET, Self.workspacePath(key) + "/processes")
    }

    /// One process.
    public func process(_ key: String, _ id: String) async throws -> WorkspaceProcess {
        try await send(.GET, Self.processPath(key, id))
    }

    /// Writes `data` to the process's stdin, and closes stdin after when `close`.
    public func writeStdin(_ key: String, _ id: String, _ data: [UInt8], close: Bool = false) async throws {
        try await sendBytes(Self.processPath(key, id) + "/stdin", query: close ? [("close", "true")] : [], data)
    }

    /// Waits until the process has exited (a 408 error when `timeoutMs` passes first).
    public func wait(_ key: String, _ id: String, timeoutMs: Int? = nil) async throws -> WorkspaceProcess {
        try decode(
            WorkspaceProcess.self,
            try await perform(
                .POST, Self.processPath(key, id) + "/wait", query: timeoutMs.map { [("timeoutMs", String($0))] } ?? [],
                timeout: deadline(waitingAtMost: timeoutMs)
            ).body)
    }

    /// Sends a signal (`TERM`, `KILL`, `INT`, `HUP`, ...) to the process.
    public func signal(_ key: String, _ id: String, _ signal: String) async throws {
        _ = try await perform(.POST, Self.processPath(key, id) + "/signal", json: SignalRequest(signal: signal))
    }

    /// The process's buffered output.
    public func output(_ key: String, _ id: String) async throws -> ProcessOutput {
        try await send(.GET, Self.processPath(key, id) + "/output")
    }

    /// The process's output so far, then live, ending with its `processExit`.
    ///
    /// ```swift
    /// for try await envelope in try await client.followOutput("demo", process.id) {
    ///     if case .processOutput(let output) = envelope.event { print(String(decoding: output.bytes, as: UTF8.self)) }
    /// }
    /// ```
    public func followOutput(_ key: String, _ id: String) async throws -> WorkspaceEventStream {
        WorkspaceEventStream(body: try await openEventStream(Self.processPath(key, id) + "/output", query: [("follow", "true")]))
    }

    static func processPath(_ key: String, _ id: String) -> String {
        workspacePath(key) + "/processes/" + segment(id)
    }
}
