import CAgentBoxSandbox
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The server's side of one `agentbox-sandbox-init`: sends it spawn and signal requests over a SOCK_SEQPACKET
/// socket (with the process's stdio descriptors attached) and reads its replies (started, failed, exited) from a
/// pipe. Both sandbox backends drive their processes through one of these.
final class Supervisor: Sendable {
    private let control: Int32
    let launcherPID: pid_t
    private let logger: Logger
    private let box = StateBox()
    private let ended: Task<Void, Never>

    /// Shared between the supervisor and its reader tasks.
    private final class StateBox: Sendable {
        let state = Mutex(State())
    }

    private struct State {
        var nextID: UInt64 = 1
        var starts: [UInt64: CheckedContinuation<Int32, any Error>] = [:]
        var exits: [UInt64: ExitSlot] = [:]
        var ready: CheckedContinuation<Void, any Error>?
        var isReady = false
        var isEnded = false
        var controlClosed = false
        var diagnostics = ""
    }

    private enum ExitSlot {
        case waiting([CheckedContinuation<SandboxExitStatus, Never>])
        case exited(SandboxExitStatus)
    }

    /// Launches the supervisor (directly, or through bwrap) and returns once it reports ready.
    ///
    /// `launch` receives the descriptors that must become the launched program's 0, 1 and 2 and returns its pid.
    static func launch(logger: Logger, _ launch: (_ stdio: [Int32]) throws -> pid_t) async throws -> Supervisor {
        var sockets: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sockets) == 0 else {
            throw SandboxError.errno("socketpair")
        }
        let replies: PipePair, diagnostics: PipePair
        do {
            replies = try PipePair()
            diagnostics = try PipePair()
        } catch {
            close(sockets[0])
            close(sockets[1])
            throw error
        }
        let pid: pid_t
        do {
            pid = try launch([sockets[1], replies.write, diagnostics.write])
        } catch {
            [sockets[0], sockets[1], replies.read, replies.write, diagnostics.read, diagnostics.write].forEach { close($0) }
            throw error
        }
        [sockets[1], replies.write, diagnostics.write].forEach { close($0) }
        let supervisor = Supervisor(control: sockets[0], launcherPID: pid, replies: replies.read, diagnostics: diagnostics.read, logger: logger)
        try await supervisor.waitUntilReady()
        return supervisor
    }

    private init(control: Int32, launcherPID: pid_t, replies: Int32, diagnostics: Int32, logger: Logger) {
        self.control = control
        self.launcherPID = launcherPID
        self.logger = logger
        let box = self.box
        self.ended = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await Self.readDiagnostics(diagnostics, box: box, logger: logger) }
                group.addTask { await Self.readReplies(replies, box: box, logger: logger) }
            }
            _ = await HostSpawn.wait(launcherPID)
            Self.finish(box: box)
        }
    }

    private func waitUntilReady() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let resumeNow: Result<Void, any Error>? = box.state.withLock { state in
                if state.isReady { return .success(()) }
                if state.isEnded { return .failure(Self.startFailure(state.diagnostics)) }
                state.ready = continuation
                return nil
            }
            if let resumeNow { continuation.resume(with: resumeNow) }
        }
    }

    private static func startFailure(_ diagnostics: String) -> SandboxError {
        let detail = diagnostics.trimmingCharacters(in: .whitespacesAndNewlines)
        return SandboxError(.startFailed, "the sandbox did not start" + (detail.isEmpty ? "" : ": \(detail)"))
    }

    // MARK: Requests

    /// Starts a process with the given stdio descriptors (the supervisor's copies; the caller closes its own).
    func spawn(_ spec: SandboxProcessSpec, stdin: Int32, stdout: Int32, stderr: Int32) async throws -> (id: UInt64, pid: Int32) {
        try await start(spec, verb: "spawn", extraFields: [], descriptors: [stdin, stdout, stderr])
    }

    /// Starts a process on a new pseudo-terminal of the sandbox, `cols` × `rows`, as its controlling terminal;
    /// returns the terminal's master descriptor (owned by the caller).
    func spawnTerminal(_ spec: SandboxProcessSpec, cols: Int, rows: Int) async throws -> (id: UInt64, pid: Int32, master: Int32) {
        var sockets: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sockets) == 0 else {
            throw SandboxError.errno("socketpair")
        }
        defer { close(sockets[0]) }
        let started: (id: UInt64, pid: Int32)
        do {
            defer { close(sockets[1]) }
            started = try await start(spec, verb: "spawn-tty", extraFields: [String(cols), String(rows)], descriptors: [sockets[1]])
        }
        // The supervisor sent the terminal before it reported the start, so it is already queued here.
        var buffer = [UInt8](repeating: 0, count: 16)
        var fds: [Int32] = [-1, -1, -1]
        var count: Int32 = 0
        let length = ab_recv_with_fds(sockets[0], &buffer, buffer.count, &fds, &count)
        guard length > 0, count == 1, fds[0] >= 0 else {
            killTree(started.id)
            throw SandboxError(.system, "the sandbox did not hand over the terminal")
        }
        return (started.id, started.pid, fds[0])
    }

    private func start(_ spec: SandboxProcessSpec, verb: String, extraFields: [String], descriptors fds: [Int32]) async throws -> (id: UInt64, pid: Int32) {
        guard let program = spec.arguments.first, !program.isEmpty else {
            throw SandboxError(.executableNotFound, "no program to run")
        }
        for text in spec.arguments + [spec.workingDirectory] + spec.environment.flatMap({ [$0.key, $0.value] })
        where text.utf8.contains(0) {
            throw SandboxError(.system, "arguments, environment and working directory must not contain NUL bytes")
        }
        let id = box.state.withLock { state in
            defer { state.nextID += 1 }
            state.exits[state.nextID] = .waiting([])
            return state.nextID
        }
        var fields = [verb, String(id), spec.workingDirectory] + extraFields + [String(spec.arguments.count)] + spec.arguments
        fields.append(String(spec.environment.count))
        fields += spec.environment.map { "\($0.key)=\($0.value)" }
        let message = Array(fields.joined(separator: "\0").utf8) + [0]
        guard message.count <= Int(AB_MAX_MESSAGE) else {
            box.state.withLock { _ = $0.exits.removeValue(forKey: id) }
            throw SandboxError(.system, "arguments and environment exceed \(AB_MAX_MESSAGE) bytes")
        }
        let pid = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
            let failure: (any Error)? = box.state.withLock { state in
                if state.isEnded || state.controlClosed { return SandboxError(.stopped, "the sandbox has stopped") }
                state.starts[id] = continuation
                return nil
            }
            if let failure {
                continuation.resume(throwing: failure)
                return
            }
            let sent = message.withUnsafeBytes { bytes in
                fds.withUnsafeBufferPointer { ab_send_with_fds(control, bytes.baseAddress, bytes.count, $0.baseAddress, Int32(fds.count)) }
            }
            if sent != 0 {
                let error = SandboxError.errno("cannot reach the sandbox")
                if let pending = box.state.withLock({ $0.starts.removeValue(forKey: id) }) { pending.resume(throwing: error) }
            }
        }
        return (id, pid)
    }

    /// Sends `signal` to the process's group.
    func signal(_ id: UInt64, _ signal: Int32) {
        send(["signal", String(id), String(signal)])
    }

    /// SIGKILLs the process, its group and all its descendants.
    func killTree(_ id: UInt64) {
        send(["kill", String(id)])
    }

    private func send(_ fields: [String]) {
        let message = Array(fields.joined(separator: "\0").utf8) + [0]
        guard !box.state.withLock({ $0.controlClosed }) else { return }
        _ = message.withUnsafeBytes { ab_send_with_fds(control, $0.baseAddress, $0.count, nil, 0) }
    }

    /// The exit status of process `id`, once it has exited (killed, if the sandbox ended first).
    func exitStatus(_ id: UInt64) async -> SandboxExitStatus {
        await withCheckedContinuation { continuation in
            let done: SandboxExitStatus? = box.state.withLock { state in
                switch state.exits[id] {
                case .exited(let status): return status
                case .waiting(var waiters):
                    waiters.append(continuation)
                    state.exits[id] = .waiting(waiters)
                    return nil
                case nil: return SandboxExitStatus(exitCode: nil, signal: SIGKILL)
                }
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// Closes the control socket: the supervisor kills every process and exits. Returns once it has.
    func stop() async {
        let shouldClose = box.state.withLock { state in
            defer { state.controlClosed = true }
            return !state.controlClosed
        }
        if shouldClose { close(control) }
        await ended.value
    }

    /// Returns when the supervisor has exited.
    func waitUntilEnded() async {
        await ended.value
    }

    // MARK: Replies

    private static func readReplies(_ fd: Int32, box: StateBox, logger: Logger) async {
        var pending = ""
        await readLines(fd) { chunk in
            pending += chunk
            while let newline = pending.firstIndex(of: "\n") {
                let line = String(pending[..<newline])
                pending = String(pending[pending.index(after: newline)...])
                handle(line, box: box, logger: logger)
            }
        }
    }

    private static func readDiagnostics(_ fd: Int32, box: StateBox, logger: Logger) async {
        await readLines(fd) { chunk in
            logger.warning("sandbox says", metadata: ["output": "\(chunk.trimmingCharacters(in: .newlines))"])
            box.state.withLock { state in
                state.diagnostics = String((state.diagnostics + chunk).suffix(2048))
            }
        }
    }

    /// Reads `fd` to its end through SwiftNIO (no thread per pipe), handing over text as it arrives.
    private static func readLines(_ fd: Int32, _ body: (String) -> Void) async {
        do {
            let channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .takingOwnershipOfDescriptor(input: fd) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            try await channel.executeThenClose { inbound, _ in
                for try await buffer in inbound { body(String(buffer: buffer)) }
            }
        } catch {
            close(fd)
        }
    }

    private static func handle(_ line: String, box: StateBox, logger: Logger) {
        let parts = line.split(separator: " ")
        guard let verb = parts.first else { return }
        switch verb {
        case "ready":
            let ready = box.state.withLock { state in
                state.isReady = true
                defer { state.ready = nil }
                return state.ready
            }
            ready?.resume()
        case "started" where parts.count == 3:
            guard let id = UInt64(parts[1]), let pid = Int32(parts[2]) else { return }
            box.state.withLock { $0.starts.removeValue(forKey: id) }?.resume(returning: pid)
        case "failed" where parts.count == 4:
            guard let id = UInt64(parts[1]), let code = Int32(parts[2]) else { return }
            let message = String(cString: strerror(code))
            let error: SandboxError =
                switch parts[3] {
                case "cwd": SandboxError(.badWorkingDirectory, "working directory: \(message)")
                case "exec": SandboxError(.executableNotFound, "cannot run the program: \(message)")
                case "terminal": SandboxError(.system, "cannot open a terminal: \(message)")
                default: SandboxError(.system, "cannot start the process (\(parts[3])): \(message)")
                }
            let continuation = box.state.withLock { state in
                state.exits[id] = nil
                return state.starts.removeValue(forKey: id)
            }
            continuation?.resume(throwing: error)
        case "exited" where parts.count == 4:
            guard let id = UInt64(parts[1]), let code = Int32(parts[2]), let signal = Int32(parts[3]) else { return }
            let status = SandboxExitStatus(exitCode: signal == 0 ? code : nil, signal: signal == 0 ? nil : signal)
            let waiters: [CheckedContinuation<SandboxExitStatus, Never>] = box.state.withLock { state in
                defer { state.exits[id] = .exited(status) }
                if case .waiting(let waiters) = state.exits[id] { return waiters }
                return []
            }
            waiters.forEach { $0.resume(returning: status) }
        default:
            logger.warning("unexpected reply from the sandbox", metadata: ["line": "\(line)"])
        }
    }

    /// The supervisor is gone: every start still pending fails, every process still running counts as killed.
    private static func finish(box: StateBox) {
        let (ready, diagnostics, starts, waiters) = box.state.withLock { state in
            state.isEnded = true
            let ready = state.ready
            state.ready = nil
            let starts = Array(state.starts.values)
            state.starts.removeAll()
            var waiters: [CheckedContinuation<SandboxExitStatus, Never>] = []
            let killed = SandboxExitStatus(exitCode: nil, signal: SIGKILL)
            for (id, slot) in state.exits {
                if case .waiting(let list) = slot {
                    waiters += list
                    state.exits[id] = .exited(killed)
                }
            }
            return (ready, state.diagnostics, starts, waiters)
        }
        ready?.resume(throwing: startFailure(diagnostics))
        starts.forEach { $0.resume(throwing: SandboxError(.stopped, "the sandbox has stopped")) }
        waiters.forEach { $0.resume(returning: SandboxExitStatus(exitCode: nil, signal: SIGKILL)) }
    }
}
