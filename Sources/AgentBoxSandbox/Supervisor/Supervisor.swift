import CAgentBoxSandbox
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The server's side of one `agentbox-sandbox-init`: sends it spawn and signal requests over a SOCK_SEQPACKET
/// socket (with the process's stdio descriptors attached) and reads its replies (started, failed, exited) from the
/// same socket. Both sandbox backends drive their processes through one of these.
///
/// The control socket is the supervisor's stdin, stdout and stderr: one descriptor of the server's per sandbox, not
/// three (a server's descriptor limit bounds how many workspaces it keeps awake). What comes back is one message per
/// `write` of the supervisor or bwrap: the supervisor writes each reply with one `write` of at most `AB_MAX_REPLY_LINE`
/// bytes, and a message that parses as a reply is one; any other (bwrap's or the supervisor's words on stderr) is a
/// diagnostic. The server reads every sandbox's socket on one thread (``ControlSocketReader``), a few messages at a
/// time.
///
/// Everything that comes out of a sandbox is hostile, the supervisor's own output included (it lives inside the
/// workspace, with the workspace's uid): a message is at most ``maximumLine`` bytes (a longer one stops the sandbox)
/// and parsed strictly; diagnostics are rate-limited before they reach the log. A socket that floods is read in turn
/// with the others, so that one sandbox's output never holds up another's.
final class Supervisor: Sendable {
    private let control: Int32
    let launcherPID: pid_t
    private let logger: Logger
    private let box = StateBox()
    private let ended: Task<Void, Never>
    /// Raised when the supervisor has exited: a wait on it, unlike on ``waitUntilEnded()``, ends when cancelled.
    let endAlarm = Alarm()

    /// Shared between the supervisor and its reader tasks.
    private final class StateBox: Sendable {
        let state = Mutex(State())
        /// Raised when the control socket is read no more: it ended (the supervisor and bwrap are gone), or the
        /// supervisor broke the protocol.
        let readEnded = Alarm()
    }

    private struct State {
        var nextID: UInt64 = 1
        var starts: [UInt64: CheckedContinuation<Int32, any Error>] = [:]
        var exits: [UInt64: ExitSlot] = [:]
        var ready: CheckedContinuation<Void, any Error>?
        /// A park under way: resumed with its outcome (or `.failed` when the sandbox ends first).
        var park: CheckedContinuation<ParkOutcome, Never>?
        /// Asked to park, or parked: no process may start until ``unpark()`` (the init refuses them too).
        var parked = false
        var isReady = false
        var isEnded = false
        /// The control socket is shut down (the supervisor sees the hang-up); no request is sent any more.
        var controlClosed = false
        /// Sends under way on the control socket: the descriptor is closed only when none is, never under one.
        var sendsInFlight = 0
        var controlReleased = false
        /// The launcher has exited (it is reaped right after): its pid must not be signalled any more.
        var launcherExited = false
        /// The control socket's registration with the ``ControlSocketReader`` while it is read.
        var readToken: UInt64?
        /// The control socket is read no more (its end, or a broken protocol): it may be closed once nothing uses it.
        var readDone = false
        /// The start of a diagnostic line whose end has not come yet (bwrap writes one message in pieces), at most
        /// ``maximumLine`` bytes.
        var partialLine: [UInt8] = []
        /// Reads from the control socket under way (on the reader thread): it is closed only when none is.
        var readsInFlight = 0
        /// The readers' rate limits of what they log.
        var errors = LogRateLimiter(limit: 10, per: .seconds(60))
        var said = LogRateLimiter(limit: 20, per: .seconds(60))
        /// The last bytes of the supervisor's diagnostics (bwrap's error when a start fails).
        var diagnostics: [UInt8] = []
    }

    /// The diagnostics kept for an error message.
    static let diagnosticsTail = 2048
    /// The longest line read from a supervisor: its replies are at most `AB_MAX_REPLY_LINE` bytes, bwrap's messages a
    /// sentence with a path or two.
    static let maximumLine = 4096
    /// How long a supervisor gets to exit after the hang-up before it is killed.
    static let stopGrace: Duration = .seconds(10)

    private enum ExitSlot {
        case waiting([CheckedContinuation<SandboxExitStatus, Never>])
        case exited(SandboxExitStatus)
        /// Its process object is gone while it runs: the slot goes when it exits.
        case forgotten
    }

    /// Launches the supervisor (directly, or through bwrap) and returns once it reports ready.
    ///
    /// `launch` receives the descriptors that must become the launched program's 0, 1 and 2 (all three the control
    /// socket's far end) and returns its pid.
    static func launch(logger: Logger, _ launch: (_ stdio: [Int32]) throws -> pid_t) async throws -> Supervisor {
        var sockets: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sockets) == 0 else {
            throw SandboxError.errno("socketpair")
        }
        let pid: pid_t
        do {
            pid = try launch([sockets[1], sockets[1], sockets[1]])
        } catch {
            [sockets[0], sockets[1]].forEach { close($0) }
            throw error
        }
        close(sockets[1])
        let supervisor = Supervisor(control: sockets[0], launcherPID: pid, logger: logger)
        try await supervisor.waitUntilReady()
        return supervisor
    }

    /// Takes over a sandbox whose init was started ahead of it (a ``PrestartedSandbox``, its bind message sent): its
    /// control socket (the server's end) and its launcher; returns once the init is ready.
    static func adopt(control: Int32, launcherPID: pid_t, logger: Logger) async throws -> Supervisor {
        let supervisor = Supervisor(control: control, launcherPID: launcherPID, logger: logger)
        try await supervisor.waitUntilReady()
        return supervisor
    }

    private init(control: Int32, launcherPID: pid_t, logger: Logger) {
        self.control = control
        self.launcherPID = launcherPID
        self.logger = logger
        let box = self.box
        let endAlarm = self.endAlarm
        do {
            let token = try ControlSocketReader.shared.register(control) {
                if Self.readControl(control, box: box, launcherPID: launcherPID, logger: logger) == .ended {
                    box.readEnded.raise("ended")
                }
            }
            box.state.withLock { $0.readToken = token }
        } catch {
            logger.error("cannot read the sandbox's control socket: stopping it", metadata: ["error": "\(error)"])
            box.state.withLock { $0.readDone = true }
            box.readEnded.raise("unreadable")
        }
        self.ended = Task {
            _ = await box.readEnded.wait()
            Self.hangUp(box: box, control: control)
            _ = await HostSpawn.wait(launcherPID) {
                box.state.withLock { $0.launcherExited = true }
            }
            Self.finish(box: box)
            endAlarm.raise("ended")
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

    private static func startFailure(_ diagnostics: [UInt8]) -> SandboxError {
        let detail = printable(diagnostics[...]).trimmingCharacters(in: .whitespacesAndNewlines)
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
            forget(started.id)
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
                if state.isEnded || state.controlClosed || state.parked { return SandboxError(.stopped, "the sandbox has stopped") }
                state.starts[id] = continuation
                return nil
            }
            if let failure {
                continuation.resume(throwing: failure)
                return
            }
            let sent = withControl { control in
                message.withUnsafeBytes { bytes in
                    fds.withUnsafeBufferPointer { ab_send_with_fds(control, bytes.baseAddress, bytes.count, $0.baseAddress, Int32(fds.count)) }
                }
            }
            if sent != 0 {
                let error = sent == nil ? SandboxError(.stopped, "the sandbox has stopped") : SandboxError.errno("cannot reach the sandbox")
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

    /// What a ``park(timeout:)`` came to.
    enum ParkOutcome: Equatable {
        /// No process is left; the sandbox is as it was built and takes requests again.
        case parked
        /// The init could not give the sandbox back as built (its reason): stop it.
        case refused(String)
        /// The sandbox ended, could not be asked, or did not answer in time: stop it.
        case failed
    }

    /// Asks the init to park the sandbox (see `park.c`): every process is killed (their exits are reported before the
    /// answer) and the tmpfs mounts are given back what they held when it was built. One park at a time.
    func park(timeout: Duration = .seconds(10)) async -> ParkOutcome {
        let box = self.box
        let deadline = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            Self.finishPark(box: box, .failed)
        }
        defer { deadline.cancel() }
        return await withCheckedContinuation { (continuation: CheckedContinuation<ParkOutcome, Never>) in
            let busy = box.state.withLock { state in
                if state.isEnded || state.controlClosed || state.park != nil { return true }
                state.park = continuation
                state.parked = true
                return false
            }
            if busy {
                continuation.resume(returning: .failed)
                return
            }
            if !send(["park"]) { Self.finishPark(box: box, .failed) }
        }
    }

    /// How many processes' exit slots are kept (for tests): one per process whose object is alive.
    var exitSlotCount: Int { box.state.withLock { $0.exits.count } }

    /// Lets processes start again in a parked sandbox (its next boot took it): the init is told first, so that every
    /// start sent after this reaches it after the `unpark`.
    func unpark() {
        send(["unpark"])
        box.state.withLock { $0.parked = false }
    }

    /// Resumes the park under way, if any, with `outcome`.
    private static func finishPark(box: StateBox, _ outcome: ParkOutcome) {
        box.state.withLock { state -> CheckedContinuation<ParkOutcome, Never>? in
            defer { state.park = nil }
            return state.park
        }?.resume(returning: outcome)
    }

    /// Whether the supervisor has exited (a parked sandbox whose init died).
    var hasEnded: Bool { box.state.withLock { $0.isEnded || $0.controlClosed } }

    /// Sends a request without descriptors; `false` when it could not be sent (the control socket is shut down).
    @discardableResult
    private func send(_ fields: [String]) -> Bool {
        let message = Array(fields.joined(separator: "\0").utf8) + [0]
        return withControl { control in message.withUnsafeBytes { ab_send_with_fds(control, $0.baseAddress, $0.count, nil, 0) } } == 0
    }

    /// Runs `body` with the control socket, unless it was shut down (then returns `nil`). The descriptor stays open
    /// while `body` runs, so a concurrent stop never closes it under a send (which could then reach a reused number).
    private func withControl<T>(_ body: (Int32) -> T) -> T? {
        let open = box.state.withLock { state in
            if state.controlClosed { return false }
            state.sendsInFlight += 1
            return true
        }
        guard open else { return nil }
        defer {
            let release = box.state.withLock { state in
                state.sendsInFlight -= 1
                return Self.takeRelease(&state)
            }
            if release { close(control) }
        }
        return body(control)
    }

    /// Whether the caller must close the control descriptor now: it is shut down, no send uses it, and nobody closed
    /// it yet.
    private static func takeRelease(_ state: inout State) -> Bool {
        guard state.controlClosed, state.readDone, state.sendsInFlight == 0, state.readsInFlight == 0, !state.controlReleased else {
            return false
        }
        state.controlReleased = true
        return true
    }

    /// Shuts the control socket's sending side down: the supervisor sees the hang-up (it kills every process, reports
    /// their exits and exits), sends in flight fail, and no new one starts. What it still says is read to the socket's
    /// end, as before the hang-up. The descriptor is closed by the last one out, once reading has ended.
    private static func hangUp(box: StateBox, control: Int32) {
        let release = box.state.withLock { state in
            if !state.controlClosed {
                state.controlClosed = true
                shutdown(control, Int32(SHUT_WR))
            }
            return takeRelease(&state)
        }
        if release { close(control) }
    }

    /// Kills the sandbox without the supervisor's help, for one that does not obey (compromised, or stopped by the
    /// workspace): the launcher's children (with bwrap, the sandbox's PID 1, whose death ends its PID namespace, every
    /// process in it) and the launcher. Only while the launcher cannot have been reaped, so its pid is still its own.
    private static func kill(box: StateBox, launcherPID: pid_t) {
        box.state.withLock { state in
            guard !state.launcherExited else { return }
            let children = KernelFile.read("/proc/\(launcherPID)/task/\(launcherPID)/children") ?? ""
            for child in children.split(separator: " ").compactMap({ pid_t($0) }) { Glibc.kill(child, SIGKILL) }
            Glibc.kill(launcherPID, SIGKILL)
        }
    }

    /// Lets go of process `id`'s slot: nothing asks for its exit any more (its process object is gone). Without this,
    /// a supervisor that lives long (an awake workspace's, a parked sandbox's over many wakes) would keep one slot per
    /// process it ever started.
    func forget(_ id: UInt64) {
        box.state.withLock { state in
            switch state.exits[id] {
            case .exited?, .forgotten?: state.exits[id] = nil
            case .waiting(let waiters)? where waiters.isEmpty: state.exits[id] = .forgotten
            case .waiting?, nil: break
            }
        }
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
                case nil, .forgotten?: return SandboxExitStatus(exitCode: nil, signal: SIGKILL)
                }
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// Hangs up the control socket: the supervisor kills every process and exits. Returns once it has; one that is
    /// still there after `stopGrace` is killed.
    func stop() async {
        Self.hangUp(box: box, control: control)
        let (box, launcherPID, logger) = (self.box, self.launcherPID, self.logger)
        let deadline = Task {
            guard (try? await Task.sleep(for: Self.stopGrace)) != nil else { return }
            logger.error("the sandbox did not stop when told: killed")
            Self.kill(box: box, launcherPID: launcherPID)
        }
        await ended.value
        deadline.cancel()
    }

    /// Returns when the supervisor has exited.
    func waitUntilEnded() async {
        await ended.value
    }

    // MARK: Replies

    /// What a turn of reading the control socket came to.
    private enum ReadOutcome {
        /// Nothing more to read now; the reader thread tells again when there is.
        case waiting
        /// The socket ended (the supervisor and bwrap are gone, or the server hung up), or the supervisor wrote what it
        /// never writes: the sandbox stops.
        case ended
    }

    /// The most messages one turn reads from one socket before the reader thread goes on to the others.
    static let messagesPerTurn = 16

    /// Reads what the supervisor sent, at most ``messagesPerTurn`` messages, on the reader thread: replies are handled,
    /// other messages are diagnostics. A message longer than ``maximumLine`` means the supervisor no longer runs our
    /// code: it is logged, and the sandbox stops.
    private static func readControl(_ control: Int32, box: StateBox, launcherPID: pid_t, logger: Logger) -> ReadOutcome {
        let open = box.state.withLock { state in
            if state.readDone { return false }
            state.readsInFlight += 1
            return true
        }
        guard open else { return .ended }
        var outcome = ReadOutcome.waiting
        defer {
            let release = box.state.withLock { state in
                state.readsInFlight -= 1
                if outcome == .ended, !state.readDone {
                    // An ended socket stays readable: the reader thread is told no more (the descriptor is open: this
                    // read holds it).
                    state.readDone = true
                    if let token = state.readToken {
                        ControlSocketReader.shared.unregister(control, token: token)
                        state.readToken = nil
                    }
                }
                return takeRelease(&state)
            }
            if release { close(control) }
            if outcome == .ended { box.readEnded.raise("ended") }
        }
        outcome = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maximumLine + 1) { buffer -> ReadOutcome in
            withUnsafeTemporaryAllocation(of: Int32.self, capacity: Int(AB_SCM_MAX_FD)) { fds -> ReadOutcome in
                for _ in 0..<messagesPerTurn {
                    var count: Int32 = 0
                    var flags: Int32 = 0
                    let length = ab_recv_message(control, buffer.baseAddress, buffer.count, fds.baseAddress, &count, &flags)
                    if count > 0 {
                        // The supervisor never sends descriptors. They are closed on a thread of their own: closing a
                        // socket may wait (SO_LINGER), and this thread reads every sandbox.
                        let passed = Array(fds[..<Int(count)])
                        Thread.detachNewThread { passed.forEach { _ = close($0) } }
                        logger.error(
                            "the sandbox's supervisor wrote what it never writes: stopping the sandbox",
                            metadata: ["reply": "a message with descriptors"])
                        kill(box: box, launcherPID: launcherPID)
                        return .ended
                    }
                    if length < 0 {
                        // ECONNRESET: the supervisor went with our requests unread; what it said before is still there.
                        if errno == EINTR || errno == ECONNRESET { continue }
                        if errno == EAGAIN || errno == EWOULDBLOCK { return .waiting }
                        return .ended
                    }
                    if length == 0 {
                        flushPartialLine(box: box, logger: logger)
                        return .ended
                    }
                    if length > maximumLine {
                        logger.error(
                            "the sandbox's supervisor wrote what it never writes: stopping the sandbox",
                            metadata: ["reply": "a message longer than \(maximumLine) bytes"])
                        kill(box: box, launcherPID: launcherPID)
                        return .ended
                    }
                    if !message(UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[..<length]), box: box, logger: logger) {
                        logger.error(
                            "the sandbox's supervisor wrote what it never writes: stopping the sandbox",
                            metadata: ["reply": "a line longer than \(maximumLine) bytes"])
                        kill(box: box, launcherPID: launcherPID)
                        return .ended
                    }
                }
                return .waiting
            }
        }
        return outcome
    }

    /// One message from the supervisor: a reply when it is one line of at most `AB_MAX_REPLY_LINE` bytes that parses
    /// (the supervisor writes each reply whole, with one `write`), else diagnostics, line by line: a line may come in
    /// several messages (bwrap writes its error in pieces), and is kept until its newline. Returns `false` when a line
    /// grew past ``maximumLine`` without one.
    private static func message(_ bytes: UnsafeRawBufferPointer, box: StateBox, logger: Logger) -> Bool {
        let midLine = box.state.withLock { !$0.partialLine.isEmpty }
        if !midLine, bytes.count <= Int(AB_MAX_REPLY_LINE), bytes.last == UInt8(ascii: "\n"),
            let reply = SupervisorReply(UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count - 1)]))
        {
            var errors = box.state.withLock { $0.errors }
            handle(reply, box: box, logger: logger, errors: &errors)
            box.state.withLock { $0.errors = errors }
            return true
        }
        var start = bytes.startIndex
        while start < bytes.endIndex {
            guard let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else {
                // The rest of a line to come.
                return box.state.withLock { state in
                    state.partialLine.append(contentsOf: bytes[start...])
                    return state.partialLine.count <= maximumLine
                }
            }
            let line = box.state.withLock { state -> [UInt8] in
                defer { state.partialLine = [] }
                return state.partialLine + bytes[start..<newline]
            }
            guard line.count <= maximumLine else { return false }
            line.withUnsafeBytes { diagnostic($0, box: box, logger: logger) }
            start = newline + 1
        }
        return true
    }

    /// A diagnostic line the socket's end cut short is still one.
    private static func flushPartialLine(box: StateBox, logger: Logger) {
        let line = box.state.withLock { state -> [UInt8] in
            defer { state.partialLine = [] }
            return state.partialLine
        }
        line.withUnsafeBytes { diagnostic($0, box: box, logger: logger) }
    }

    /// Keeps a line of the supervisor's or bwrap's diagnostics for an error message and logs it: at most 20 a minute.
    private static func diagnostic(_ line: UnsafeRawBufferPointer, box: StateBox, logger: Logger) {
        guard !line.isEmpty else { return }
        let decision = box.state.withLock { state in
            state.diagnostics.append(contentsOf: line.suffix(diagnosticsTail - 1))
            state.diagnostics.append(UInt8(ascii: "\n"))
            if state.diagnostics.count > diagnosticsTail { state.diagnostics.removeFirst(state.diagnostics.count - diagnosticsTail) }
            return state.said.decide()
        }
        switch decision {
        case .log(let dropped):
            if dropped > 0 { logger.warning("sandbox diagnostics dropped", metadata: ["lines": "\(dropped)"]) }
            logger.warning("sandbox says", metadata: ["output": "\(printable(line.prefix(1024)))"])
        case .startDropping:
            logger.warning("the sandbox says too much: dropping its diagnostics for a while")
        case .drop:
            break
        }
    }

    /// Text of bytes from a sandbox, fit for a log line or an error message: control characters become U+FFFD.
    private static func printable(_ bytes: some Collection<UInt8>) -> String {
        String(String.UnicodeScalarView(String(decoding: bytes, as: UTF8.self).unicodeScalars.map { scalar in
            scalar.value < 0x20 && scalar != "\t" && scalar != "\n" || scalar.value == 0x7F ? "\u{FFFD}" : scalar
        }))
    }

    private static func handle(_ reply: SupervisorReply, box: StateBox, logger: Logger, errors: inout LogRateLimiter) {
        switch reply {
        case .ready:
            let ready = box.state.withLock { state in
                state.isReady = true
                defer { state.ready = nil }
                return state.ready
            }
            ready?.resume()
        case .started(let id, let pid):
            box.state.withLock { $0.starts.removeValue(forKey: id) }?.resume(returning: pid)
        case .failed(let id, let code, let stage):
            let message = String(cString: strerror(code))
            let error: SandboxError =
                switch stage {
                case .cwd: SandboxError(.badWorkingDirectory, "working directory: \(message)")
                case .exec: SandboxError(.executableNotFound, "cannot run the program: \(message)")
                case .terminal: SandboxError(.system, "cannot open a terminal: \(message)")
                case .fork where code == EAGAIN: SandboxError(.processLimit, "the sandbox runs as many processes as it may")
                default: SandboxError(.system, "cannot start the process (\(stage.rawValue)): \(message)")
                }
            let continuation = box.state.withLock { state in
                // Only a start still waiting: a reply for another id leaves the table alone.
                guard let continuation = state.starts.removeValue(forKey: id) else { return nil as CheckedContinuation<Int32, any Error>? }
                state.exits[id] = nil
                return continuation
            }
            continuation?.resume(throwing: error)
        case .exited(let id, let code, let signal):
            let status = SandboxExitStatus(exitCode: signal == 0 ? code : nil, signal: signal == 0 ? nil : signal)
            let waiters: [CheckedContinuation<SandboxExitStatus, Never>] = box.state.withLock { state in
                // Only for a process of ours that has not exited yet, so that the table never grows on replies.
                switch state.exits[id] {
                case .waiting(let waiters)?:
                    state.exits[id] = .exited(status)
                    return waiters
                case .forgotten?:
                    state.exits[id] = nil
                    return []
                case .exited?, nil:
                    return []
                }
            }
            waiters.forEach { $0.resume(returning: status) }
        case .parked, .unparkable:
            let outcome: ParkOutcome = if case .unparkable(let reason) = reply { .refused(reason) } else { .parked }
            finishPark(box: box, outcome)
        case .error(let text):
            switch errors.decide() {
            case .log: logger.warning("the sandbox refused a request", metadata: ["error": "\(printable(text.utf8))"])
            case .startDropping, .drop: break
            }
        }
    }

    /// The supervisor is gone: every start still pending fails, every process still running counts as killed.
    private static func finish(box: StateBox) {
        let (ready, diagnostics, starts, waiters, park) = box.state.withLock { state in
            state.isEnded = true
            let park = state.park
            state.park = nil
            let ready = state.ready
            state.ready = nil

            let starts = Array(state.starts.values)
            state.starts.removeAll()
            var waiters: [CheckedContinuation<SandboxExitStatus, Never>] = []
            let killed = SandboxExitStatus(exitCode: nil, signal: SIGKILL)
            for (id, slot) in state.exits {
                switch slot {
                case .waiting(let list):
                    waiters += list
                    state.exits[id] = .exited(killed)
                case .forgotten:
                    state.exits[id] = nil
                case .exited:
                    break
                }
            }
            return (ready, state.diagnostics, starts, waiters, park)
        }
        park?.resume(returning: .failed)
        ready?.resume(throwing: startFailure(diagnostics))
        starts.forEach { $0.resume(throwing: SandboxError(.stopped, "the sandbox has stopped")) }
        waiters.forEach { $0.resume(returning: SandboxExitStatus(exitCode: nil, signal: SIGKILL)) }
    }
}
