import Foundation
import Subprocess
import Synchronization
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

/// A program the adapter starts (Claude Code, Codex's app server, a stdio MCP server), its standard input and output
/// (and error, when asked) on pipes of ours, started through swift-subprocess.
///
/// swift-subprocess starts it with every other descriptor closed and every signal unblocked and at its default, from
/// whatever thread asks: a Swift concurrency thread blocks TERM, INT and HUP, and a child that kept that mask outlived
/// `terminate()` (Codex's app server, Python servers). It reaps only its own child; this type sees the exit with
/// `waitid(WNOWAIT)`, which leaves the reap to it.
///
/// Signals are sent while the child cannot have been reaped: swift-subprocess reaps after `run`'s body returns, and
/// the body returns only once the exit is recorded here, under the lock that `signal(_:)` takes. So a signal never
/// reaches another process that was given the same pid.
final class ChildProgram: Sendable {
    /// The child's standard input, for writing.
    let input: FileHandle
    /// The child's standard output, for reading.
    let output: FileHandle
    /// The child's standard error, for reading (nil: it goes to /dev/null).
    let errors: FileHandle?
    let processIdentifier: pid_t

    private struct State {
        /// The child has ended (it may still be a zombie, not yet reaped).
        var ended = false
        /// How it ended, once swift-subprocess has reaped it (nil inside: it did not say).
        var reaped: TerminationStatus?? = nil
        var waiters: [Int: CheckedContinuation<TerminationStatus?, Never>] = [:]
        var nextWaiter = 0
    }
    private let state = Mutex(State())

    private init(processIdentifier: pid_t, input: FileHandle, output: FileHandle, errors: FileHandle?) {
        self.processIdentifier = processIdentifier
        self.input = input
        self.output = output
        self.errors = errors
    }

    /// Starts `path` (a relative one from this process's directory) with `arguments`, in `workingDirectory` (nil:
    /// this process's), with this process's environment and `environment` over it, in a process group of its own.
    static func start(
        path: String, arguments: [String], environment: [String: String], workingDirectory: String? = nil, capturesErrors: Bool = false
    ) async throws -> ChildProgram {
        _ = ignoreBrokenPipes
        // Every end closes on exec, made so at once (pipe2, open with O_CLOEXEC): swift-subprocess gives the child its
        // ends as 0, 1 and 2, and no other child may keep one (one holding Claude's stdin would keep it from ending).
        var opened: [FileDescriptor] = []
        func pipe() throws -> (readEnd: FileDescriptor, writeEnd: FileDescriptor) {
            let ends = try FileDescriptor.pipe(options: .closeOnExec)
            opened += [ends.readEnd, ends.writeEnd]
            return ends
        }
        let stdin: (readEnd: FileDescriptor, writeEnd: FileDescriptor)
        let stdout: (readEnd: FileDescriptor, writeEnd: FileDescriptor)
        let stderr: (readEnd: FileDescriptor?, writeEnd: FileDescriptor)
        do {
            stdin = try pipe()
            stdout = try pipe()
            if capturesErrors {
                let ends = try pipe()
                stderr = (ends.readEnd, ends.writeEnd)
            } else {
                // /dev/null opened here: swift-subprocess's own `.discarded` traps when that open fails.
                stderr = (nil, try FileDescriptor.open("/dev/null", .writeOnly, options: .closeOnExec))
            }
        } catch {
            for descriptor in opened { try? descriptor.close() }
            throw error
        }
        var updates: [Environment.Key: String?] = [:]
        for (name, value) in environment {
            if let key = Environment.Key(rawValue: name) { updates[key] = value }
        }
        var executable = FilePath(path)
        if executable.isRelative { executable = FilePath(FileManager.default.currentDirectoryPath).pushing(executable) }
        var options = PlatformOptions()
        options.processGroupID = 0
        let configuration = Configuration(
            executable: .path(executable), arguments: Arguments(arguments), environment: .inherit.updating(updates),
            workingDirectory: workingDirectory.map { FilePath($0) }, platformOptions: options)
        // The child's ends go to swift-subprocess, which closes them (closeAfterSpawningProcess) whether or not the
        // child starts; ours close as their handles go.
        let childEnds = (stdin: stdin.readEnd, stdout: stdout.writeEnd, stderr: stderr.writeEnd)
        let ourEnds = (
            input: FileHandle(fileDescriptor: stdin.writeEnd.rawValue, closeOnDealloc: true),
            output: FileHandle(fileDescriptor: stdout.readEnd.rawValue, closeOnDealloc: true),
            errors: stderr.readEnd.map { FileHandle(fileDescriptor: $0.rawValue, closeOnDealloc: true) })
        return try await withCheckedThrowingContinuation { started in
            Task.detached {
                let program = Mutex<ChildProgram?>(nil)
                do {
                    let result = try await Subprocess.run(
                        configuration, input: .fileDescriptor(childEnds.stdin, closeAfterSpawningProcess: true),
                        output: .fileDescriptor(childEnds.stdout, closeAfterSpawningProcess: true),
                        error: .fileDescriptor(childEnds.stderr, closeAfterSpawningProcess: true)
                    ) { execution in
                        let child = ChildProgram(
                            processIdentifier: execution.processIdentifier.value, input: ourEnds.input, output: ourEnds.output,
                            errors: ourEnds.errors)
                        program.withLock { $0 = child }
                        started.resume(returning: child)
                        await child.waitForEnd()
                    }
                    program.withLock { $0 }?.record(result.terminationStatus)
                } catch {
                    if let child = program.withLock({ $0 }) {
                        child.record(nil)
                    } else {
                        started.resume(throwing: error)
                    }
                }
            }
        }
    }

    /// Sends `signal` to the child unless it has ended.
    func signal(_ signal: Int32) {
        state.withLock { state in
            if !state.ended { _ = Glibc.kill(processIdentifier, signal) }
        }
    }

    var isRunning: Bool { state.withLock { !$0.ended } }

    /// Waits until the child has ended and been reaped: how it ended. Nil when the waiting task is cancelled, or when
    /// swift-subprocess could not say.
    func exit() async -> TerminationStatus? {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<TerminationStatus?, Never>) in
                let answer: TerminationStatus?? = state.withLock { state in
                    if let reaped = state.reaped { return .some(reaped) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = waiter
                    return nil
                }
                if let answer { waiter.resume(returning: answer) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: nil)
        }
    }

    /// Waits for the child's end for at most `timeout`, whatever the calling task's cancellation (a grace period is
    /// given in full): whether it ended in that time.
    func exit(within timeout: Duration) async -> Bool {
        await Task { await self.exit(waitingAtMost: timeout) }.value
    }

    private func exit(waitingAtMost timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = await self.exit()
                return !Task.isCancelled
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first || !isRunning
        }
    }

    /// Returns once the child has ended, seen by `waitid` with `WNOWAIT` on a thread of its own: nothing here reaps
    /// it, so until the body this is called from returns, its pid stays its own.
    private func waitForEnd() async {
        let pid = processIdentifier
        await withCheckedContinuation { (ended: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                var info = siginfo_t()
                while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
                ended.resume()
            }
        }
        state.withLock { $0.ended = true }
    }

    private func record(_ status: TerminationStatus?) {
        let waiters = state.withLock { state in
            state.ended = true
            state.reaped = .some(status)
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    /// A child that exits (or closes its stdin) while a message is on its way to it must fail that write, not end
    /// this whole process with SIGPIPE.
    private static let ignoreBrokenPipes: Void = { _ = Glibc.signal(SIGPIPE, SIG_IGN) }()
}

extension TerminationStatus {
    /// "status 1", "signal 9".
    var summary: String {
        switch self {
        case .exited(let code): "status \(code)"
        case .signaled(let signal): "signal \(signal)"
        }
    }
}
