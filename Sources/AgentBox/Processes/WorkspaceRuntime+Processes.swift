import AgentBoxAPI
import AgentBoxSandbox
import CoreMetrics
import Foundation
import NIOCore

extension WorkspaceRuntime {
    // MARK: Starting

    /// Runs a shell command line to completion (`/bin/sh -c`) and returns its output. On `timeoutMs` the command
    /// and every process it started are killed. Boots the workspace if it sleeps.
    public func exec(_ request: ExecRequest) async throws -> ExecResult {
        let maxOutput = request.maxOutputBytes ?? configuration.execDefaultMaxOutputBytes
        guard (0...configuration.execMaxOutputBytesLimit).contains(maxOutput) else {
            throw AgentBoxError(.invalidArgument, "maxOutputBytes must be 0...\(configuration.execMaxOutputBytesLimit), not \(maxOutput)")
        }
        if let timeout = request.timeoutMs, timeout <= 0 {
            throw AgentBoxError(.invalidArgument, "timeoutMs must be positive, not \(timeout)")
        }
        guard !request.command.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw AgentBoxError(.invalidArgument, "command must not be empty")
        }
        var stdin: [UInt8]?
        if let text = request.stdin {
            guard let bytes = OutputText.decode(text, encoding: request.stdinEncoding) else {
                throw AgentBoxError(.invalidArgument, "stdin is not base64, as stdinEncoding says")
            }
            stdin = bytes
        }
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        let started = ContinuousClock.now
        let entry = try await start(
            arguments: ["/bin/sh", "-c", request.command], display: (request.command, []), cwd: request.cwd,
            env: request.env, user: request.user, stdin: stdin.map { .data($0) } ?? .empty,
            output: OutputBuffer.Policy.keepFirst, limit: maxOutput)
        let id = entry.info.id
        let pump = entry.pump
        let handle = entry.handle
        // A caller that goes away takes its command with it: no command outlives the request that ran it.
        await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                // The deadline counts from the request, not from the start's reply (slow when the workspace is busy).
                if let timeout = request.timeoutMs {
                    group.addTask { [weak self] in
                        do { try await Task.sleep(until: started + .milliseconds(timeout), clock: .continuous) } catch { return }
                        await self?.timeOut(id)
                    }
                }
                await pump?.value
                group.cancelAll()
            }
        } onCancel: {
            handle.killTree()
        }
        let elapsed = ContinuousClock.now - started
        metrics.execs.increment()
        metrics.execDuration.record(elapsed: elapsed)
        let stdout = OutputText.encode(entry.stdout.contents)
        let stderr = OutputText.encode(entry.stderr.contents)
        return ExecResult(
            exitCode: entry.info.exitCode ?? -1, signal: entry.info.signal, stdout: stdout.text, stderr: stderr.text,
            stdoutEncoding: stdout.encoding, stderrEncoding: stderr.encoding, timedOut: entry.timedOut,
            truncated: entry.stdout.truncated || entry.stderr.truncated,
            durationMs: elapsed.milliseconds, processId: id)
    }

    /// Starts a program without a shell and leaves it running; it holds the workspace awake until it exits.
    public func spawn(_ request: SpawnRequest) async throws -> WorkspaceProcess {
        guard !request.command.isEmpty else { throw AgentBoxError(.invalidArgument, "command must not be empty") }
        let activity = try await beginActivity()
        do {
            let entry = try await start(
                arguments: [request.command] + (request.args ?? []), display: (request.command, request.args ?? []),
                cwd: request.cwd, env: request.env, user: request.user, stdin: .pipe, output: OutputBuffer.Policy.keepLast,
                limit: configuration.processOutputBufferBytes)
            // The process holds its own activity; the request's ends here.
            entry.activity = try await beginActivity()
            endActivity(activity)
            return entry.info
        } catch {
            endActivity(activity)
            throw error
        }
    }

    func start(
        arguments: [String], display: (command: String, args: [String]), cwd: String?, env: [String: String]?, user: String? = nil,
        stdin: SandboxProcessSpec.Stdin, output policy: @escaping (Int) -> OutputBuffer.Policy, limit: Int,
        publishesOutput: Bool = true
    ) async throws -> ProcessEntry {
        // A desktop that is on comes back with the workspace's first process after a sleep, so that it finds DISPLAY.
        await restoreDesktopIfOn()
        let sandbox = try runningSandbox()
        var spec = try processSpec(arguments: arguments, display: display.command, cwd: cwd, env: env, user: user, sandbox: sandbox)
        spec.stdin = stdin
        let workingDirectory = spec.workingDirectory
        let handle: SandboxProcess
        do {
            handle = try await sandbox.spawn(spec)
        } catch let error as SandboxError {
            throw mapStartError(error, command: display.command, cwd: workingDirectory)
        }
        let info = WorkspaceProcess(
            id: ProcessTable.makeID(), pid: handle.pid, command: display.command, args: display.args, cwd: workingDirectory,
            status: .running, startedAt: Date())
        let entry = ProcessEntry(info: info, handle: handle, policy: policy, limit: limit)
        entry.publishesOutput = publishesOutput
        processes.insert(entry)
        metrics.processesStarted.increment()
        metrics.processes.increment()
        entry.pump = Task { [weak self] in await Self.pump(handle, id: info.id, into: self) }
        return entry
    }

    /// What to launch: `arguments` in `cwd` (checked) with the workspace's environment (the egress proxy's
    /// variables included), then `extraEnvironment`,
    /// then `env` (checked) on top.
    func processSpec(
        arguments: [String], display: String, cwd: String?, env: [String: String]?, user: String? = nil, sandbox: any Sandbox,
        extraEnvironment: [String: String] = [:]
    ) throws -> SandboxProcessSpec {
        let workingDirectory = try resolveWorkingDirectory(cwd, default: sandbox.defaultWorkingDirectory)
        let arguments = try Self.arguments(arguments, asUser: user, sandbox: sandbox)
        var environment = sandbox.baseEnvironment.merging(hasEgressProxy ? EgressProxy.environment : [:]) { $1 }
        if user == Self.agentUser { environment.merge(["HOME": "/home/agent", "USER": Self.agentUser, "LOGNAME": Self.agentUser]) { $1 } }
        addToolkitEnvironment(&environment)
        // The LLM gateway's variables (an agent session's own key when the session is named), under the workspace's.
        environment.merge(
            WorkspaceManager.llmEnvironment(configuration.llmGateway, workspace: key, id: id, session: env?["AGENTBOX_SESSION_ID"] ?? extraEnvironment["AGENTBOX_SESSION_ID"])
        ) { $1 }
        // Programs started while the desktop's display runs find it (the workspace's own env may say otherwise).
        if desktop.display != nil { environment["DISPLAY"] = DesktopCommands.display }
        environment = environment.merging(config.env ?? [:]) { $1 }.merging(extraEnvironment) { $1 }
        for (name, value) in env ?? [:] {
            try Self.validateEnvironment(name: name, value: value)
            environment[name] = value
        }
        for text in arguments where text.utf8.contains(0) {
            throw AgentBoxError(.invalidArgument, "command and args must not contain NUL bytes")
        }
        let bytes = arguments.reduce(0) { $0 + $1.utf8.count + 1 } + environment.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 }
        if bytes > Self.maxStartBytes {
            throw AgentBoxError(.tooLarge, "the command, its arguments and its environment hold \(bytes) bytes; at most \(Self.maxStartBytes)")
        }
        return SandboxProcessSpec(arguments: arguments, environment: environment, workingDirectory: workingDirectory)
    }

    /// The unprivileged user of every workspace (uid and gid 1000, home `/home/agent`).
    public static let agentUser = "agent"

    /// `arguments` as run by `user`: `nil` or `root` as they are (the sandbox's own user); `agent` through `setpriv`,
    /// which drops to uid and gid 1000 with no supplementary groups before it executes them, when the sandbox's
    /// processes run as its root (a sandbox without root already runs them as 1000).
    static func arguments(_ arguments: [String], asUser user: String?, sandbox: any Sandbox) throws -> [String] {
        switch user {
        case nil, "root"?:
            return arguments
        case agentUser?:
            guard sandbox.baseEnvironment["USER"] == "root" else { return arguments }
            let uid = WorkspaceIDs.agent
            return ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--"] + arguments
        case let other?:
            throw AgentBoxError(.invalidArgument, "user must be 'root' or '\(agentUser)', not '\(other)'")
        }
    }

    /// A sandbox's refusal to start a process, as the API error it means.
    func mapStartError(_ error: SandboxError, command: String, cwd: String) -> AgentBoxError {
        switch error.code {
        case .executableNotFound: AgentBoxError(.invalidArgument, "\(command): \(error.message)")
        case .badWorkingDirectory: AgentBoxError(.invalidArgument, "cwd '\(cwd)': \(error.message)")
        case .stopped: AgentBoxError(.conflict, "workspace '\(key)' stopped while the process was starting")
        case .processLimit:
            AgentBoxError(.limitReached, "workspace '\(key)' runs as many processes as its limit allows (limits.pids); try again when some have ended")
        default: AgentBoxError(.internalError, "cannot start the process: \(error.message)", underlyingError: error)
        }
    }

    /// How long a process's output is still read after it exited, when its pipes stay open (a background child).
    static let outputGrace: Duration = .seconds(1)

    /// Reads a process's output to its end, then records its exit. Runs off the actor; hops onto it per chunk.
    private static func pump(_ handle: SandboxProcess, id: String, into runtime: WorkspaceRuntime?) async {
        enum Outcome: Sendable {
            case drained
            case exited(SandboxExitStatus)
            case graceOver

            var isGraceOver: Bool {
                if case .graceOver = self { return true }
                return false
            }
        }
        let status: SandboxExitStatus = await withTaskGroup(of: Outcome.self) { group in
            for (stream, channel) in [(ProcessStream.stdout, handle.stdout), (.stderr, handle.stderr)] {
                group.addTask {
                    try? await channel.executeThenClose { inbound, _ in
                        for try await chunk in inbound { await runtime?.received(chunk, from: stream, of: id) }
                    }
                    return .drained
                }
            }
            group.addTask { .exited(await handle.exitStatus()) }
            var drained = 0
            var status: SandboxExitStatus?
            while let outcome = await group.next() {
                switch outcome {
                case .drained: drained += 1
                case .exited(let exit):
                    status = exit
                    // A background child may keep the pipes open: give the output a moment, then stop reading. What
                    // the process wrote is already in the pipes, and reading it normally takes microseconds; the
                    // grace is for a loaded machine, where 100 ms once cut an `echo`'s output (1 exec in 1,000 on
                    // CI's two busy cores). Only a command that leaves a child holding its pipes waits it out.
                    group.addTask {
                        do { try await Task.sleep(for: Self.outputGrace) } catch {}
                        return .graceOver
                    }
                case .graceOver: group.cancelAll()
                }
                if let status, drained == 2 || outcome.isGraceOver {
                    group.cancelAll()
                    return status
                }
            }
            return status ?? SandboxExitStatus(exitCode: nil, signal: SIGKILL)
        }
        await runtime?.exited(id, status: status)
    }

    /// A chunk of output arrived: keep it and publish it (UTF-8 sequences cut by the chunk wait for the next one).
    private func received(_ chunk: ByteBuffer, from stream: ProcessStream, of id: String) async {
        guard let entry = processes[id] else { return }
        switch stream {
        case .stdout: entry.stdout.append(chunk)
        case .stderr: entry.stderr.append(chunk)
        }
        guard entry.publishesOutput else {
            if stream == .stdout { entry.stdoutLines += chunk.readableBytesView.lazy.filter { $0 == UInt8(ascii: "\n") }.count }
            return
        }
        let bytes = (entry.carry[stream] ?? []) + chunk.readableBytesView
        let (complete, carry) = splitAtUTF8Boundary(bytes)
        entry.carry[stream] = carry.isEmpty ? nil : Array(carry)
        guard !complete.isEmpty else { return }
        let (text, encoding) = OutputText.encode(complete)
        await publish(.processOutput(ProcessOutputEvent(processId: id, stream: stream, data: text, encoding: encoding)))
    }

    private func exited(_ id: String, status: SandboxExitStatus) async {
        guard let entry = processes[id] else { return }
        for (stream, carry) in entry.carry where !carry.isEmpty {
            let (text, encoding) = OutputText.encode(carry)
            await publish(.processOutput(ProcessOutputEvent(processId: id, stream: stream, data: text, encoding: encoding)))
        }
        entry.carry.removeAll()
        entry.info.status = .exited
        entry.info.exitCode = status.shellExitCode
        entry.info.signal = status.signal.map(ProcessSignal.name(of:))
        entry.info.exitedAt = Date()
        entry.pump = nil
        metrics.processes.decrement()
        await publish(.processExit(ProcessExitEvent(processId: id, exitCode: status.shellExitCode, signal: entry.info.signal)))
        for waiter in entry.exitWaiters.values { waiter.resume(returning: entry.info) }
        entry.exitWaiters.removeAll()
        if let activity = entry.activity {
            entry.activity = nil
            endActivity(activity)
        }
        processes.exited(id, keeping: configuration.exitedProcessMemory)
    }

    private func timeOut(_ id: String) {
        guard let entry = processes[id], entry.isRunning else { return }
        entry.timedOut = true
        entry.handle.killTree()
    }

    /// Waits until every process pump has finished (after the sandbox stopped, they finish at once).
    func drainProcesses() async {
        for pump in processes.pumps { await pump.value }
    }

    // MARK: Inspecting and controlling

    /// Every running process and the most recently exited ones, in start order. Never boots.
    public func processList() -> ProcessList {
        ProcessList(items: processes.all)
    }

    /// One process. Never boots.
    public func process(_ id: String) throws -> WorkspaceProcess {
        try entry(id).info
    }

    /// Writes to a running process's stdin, then closes it when `close`.
    public func writeStdin(_ id: String, data: [UInt8], close: Bool) async throws {
        let entry = try runningEntry(id)
        if !data.isEmpty {
            do {
                try await entry.handle.write(stdin: ByteBuffer(bytes: data))
            } catch {
                throw AgentBoxError(.conflict, "the stdin of process \(id) is closed")
            }
        }
        if close { await entry.handle.closeStdin() }
    }

    /// Sends `signal` to a running process (and its process group).
    public func signal(_ id: String, _ signal: ProcessSignal) throws {
        let entry = try runningEntry(id)
        if signal == .KILL { entry.handle.killTree() } else { entry.handle.signal(signal.number) }
    }

    /// Waits until the process has exited and returns it; throws `timeout` when `timeout` passes first.
    public func wait(_ id: String, timeout: Duration?) async throws -> WorkspaceProcess {
        let entry = try entry(id)
        guard entry.isRunning else { return entry.info }
        let waiterID = processes.makeWaiterID()
        let result = await withTaskGroup(of: Void.self) { group in
            if let timeout {
                // Resumes the waiter at the deadline, or sooner when the caller is cancelled (a waiter nobody reads
                // must not stay until the process exits); after a resume by the exit it finds nothing to do.
                group.addTask { [weak self] in
                    try? await Task.sleep(for: timeout)
                    await self?.resumeWaiter(waiterID, of: id)
                }
            }
            let result = await withCheckedContinuation { continuation in
                entry.exitWaiters[waiterID] = continuation
            }
            group.cancelAll()
            return result
        }
        guard let result else { throw AgentBoxError(.timeout, "process \(id) is still running") }
        return result
    }

    private func resumeWaiter(_ waiterID: UInt64, of id: String) {
        processes[id]?.exitWaiters.removeValue(forKey: waiterID)?.resume(returning: nil)
    }

    /// What the process wrote, as kept in its buffers. Never boots.
    public func output(_ id: String) throws -> ProcessOutput {
        let entry = try entry(id)
        let stdout = OutputText.encode(entry.stdout.contents)
        let stderr = OutputText.encode(entry.stderr.contents)
        return ProcessOutput(
            stdout: stdout.text, stderr: stderr.text, stdoutEncoding: stdout.encoding, stderrEncoding: stderr.encoding,
            truncated: entry.stdout.truncated || entry.stderr.truncated)
    }

    /// The process's output so far (as `processOutput` events without a sequence number), then its live output and
    /// its `processExit`, after which the sequence ends; see ``ProcessFollow`` for a follower that falls behind.
    public func followOutput(_ id: String) throws -> ProcessFollow {
        let entry = try entry(id)
        // Bounded by the ledger's bytes (a chunk count would drop the newest silently).
        let (stream, continuation) = AsyncStream<ProcessFollow.Element>.makeStream(bufferingPolicy: .unbounded)
        let ledger = ProcessFollow.Ledger()
        for (name, buffer) in [(ProcessStream.stdout, entry.stdout), (.stderr, entry.stderr)] where !buffer.contents.isEmpty {
            let (text, encoding) = OutputText.encode(buffer.contents)
            let event = WorkspaceEvent.processOutput(ProcessOutputEvent(processId: id, stream: name, data: text, encoding: encoding))
            _ = ledger.hold(ProcessFollow.Ledger.size(of: event))
            continuation.yield((nil, event))
        }
        guard entry.isRunning else {
            continuation.yield((nil, .processExit(ProcessExitEvent(processId: id, exitCode: entry.info.exitCode ?? -1, signal: entry.info.signal))))
            continuation.finish()
            return ProcessFollow(stream: stream, ledger: ledger)
        }
        // Subscribed in the same actor turn as the snapshot: no chunk falls between the two.
        let live = events()
        // Owned by the runtime: it ends with the process's exit (a stop waits for that), or when the follower goes.
        let forwarder = followers.start { [weak self] task in
            await Self.forward(live, of: id, to: continuation, ledger: ledger)
            await self?.followerEnded(task)
        }
        continuation.onTermination = { _ in forwarder.cancel() }
        return ProcessFollow(stream: stream, ledger: ledger)
    }

    /// Forwards the output and the exit of process `id` from the workspace's events to a follower, then ends it; ends
    /// it early, marked lost, when it falls too far behind or the workspace's events dropped this subscriber.
    private static func forward(
        _ live: AsyncStream<WorkspaceEventEnvelope>, of id: String,
        to continuation: AsyncStream<ProcessFollow.Element>.Continuation, ledger: ProcessFollow.Ledger
    ) async {
        for await envelope in live {
            switch envelope.event {
            case .processOutput(let output) where output.processId == id:
                guard ledger.hold(output.data.utf8.count) else {
                    continuation.finish()
                    return
                }
                continuation.yield((envelope.seq, envelope.event))
            case .processExit(let exit) where exit.processId == id:
                continuation.yield((envelope.seq, envelope.event))
                continuation.finish()
                return
            default:
                continue
            }
        }
        // The workspace's events ended first: they dropped this subscriber (too slow), or the workspace is gone.
        if !Task.isCancelled { ledger.markLost() }
        continuation.finish()
    }

    private func followerEnded(_ task: UInt64) {
        followers.finished(task)
    }

    private func entry(_ id: String) throws -> ProcessEntry {
        guard let entry = processes[id] else { throw AgentBoxError(.notFound, "no process '\(id)' in workspace '\(key)'") }
        return entry
    }

    private func runningEntry(_ id: String) throws -> ProcessEntry {
        let entry = try entry(id)
        guard entry.isRunning else { throw AgentBoxError(.conflict, "process \(id) has exited") }
        return entry
    }

    // MARK: Validation

    /// A path in the workspace's view: absolute, or relative to /workspace.
    func resolveWorkingDirectory(_ cwd: String?, default defaultDirectory: String) throws -> String {
        guard let cwd, !cwd.isEmpty else { return defaultDirectory }
        if cwd.utf8.contains(0) { throw AgentBoxError(.invalidArgument, "cwd must not contain NUL bytes") }
        if cwd.utf8.count > 4096 { throw AgentBoxError(.invalidArgument, "cwd is longer than 4096 bytes") }
        return cwd.hasPrefix("/") ? cwd : "/workspace/" + cwd
    }

    /// The most bytes of arguments and environment one process may start with: what one request to the sandbox's
    /// supervisor carries (256 KiB), less room for the rest of the request.
    static let maxStartBytes = 192 << 10

    static func validateEnvironment(name: String, value: String) throws {
        if name.isEmpty || name.contains("=") || name.utf8.contains(0) {
            throw AgentBoxError(.invalidArgument, "env name '\(name)' is not valid (empty, or holds '=' or NUL)")
        }
        if value.utf8.contains(0) { throw AgentBoxError(.invalidArgument, "env value of '\(name)' holds a NUL byte") }
    }
}
