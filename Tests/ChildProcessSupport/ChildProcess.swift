import AgentBoxSandbox
import Foundation

/// A host program the tests start, with the part of Foundation's `Process` they use (the same names), started through
/// the sandbox's `ab_spawn`: a `vfork`, every signal default and unblocked in the child, every descriptor but its stdio
/// closed (`close_range`, not a listing of `/proc/self/fd`).
///
/// Not Foundation's `Process`, whose `run()` copies 256 bytes out of every `/proc/self/fd` entry to find the highest
/// descriptor (swift-corelibs-foundation#5472): in a test process with ~1,300 descriptors open, that read can run off
/// its buffer's mapping, and a CI unit pass died of it. Nor its exit watching, a SIGCHLD handler that other code of
/// the test process can displace: here one thread per child waits for it with `waitpid`.
public final class ChildProcess: @unchecked Sendable {
    public enum TerminationReason: Sendable { case exit, uncaughtSignal }

    public var executableURL: URL?
    public var arguments: [String]?
    /// `nil`: the test process's own.
    public var environment: [String: String]?
    /// Run through `env -C` (`ab_spawn` has no working directory of its own).
    public var currentDirectoryURL: URL?
    /// A `Pipe` (the child gets the end it reads from, or writes to), a `FileHandle` (`FileHandle.nullDevice`:
    /// /dev/null), or `nil` (unlike `Process`, which reads a `nil` set on purpose as /dev/null): the test process's
    /// own descriptor.
    public var standardInput: Any?
    public var standardOutput: Any?
    public var standardError: Any?
    /// Called once on the waiting thread when the child has exited.
    public var terminationHandler: (@Sendable (ChildProcess) -> Void)?

    private let condition = NSCondition()
    private var pid: pid_t = 0
    private var status: Int32?

    public init() {}

    public var processIdentifier: Int32 { condition.withLock { pid } }

    public var isRunning: Bool { condition.withLock { pid != 0 && status == nil } }

    /// The exit code, or the number of the signal that ended it; only once it has exited.
    public var terminationStatus: Int32 {
        let raw = condition.withLock { status } ?? 0
        return raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f
    }

    public var terminationReason: TerminationReason {
        (condition.withLock { status } ?? 0) & 0x7f == 0 ? .exit : .uncaughtSignal
    }

    public func run() throws {
        guard let executable = executableURL?.path else { throw ChildProcessError("no executable") }
        var argv = [executable] + (arguments ?? [])
        var path = executable
        if let directory = currentDirectoryURL?.path {
            argv = ["/usr/bin/env", "-C", directory, "--"] + argv
            path = "/usr/bin/env"
        }
        var closeAfter: [FileHandle] = []
        func descriptor(_ option: Any?, standard: Int32, reads: Bool) -> Int32 {
            switch option {
            case let pipe as Pipe:
                let end = reads ? pipe.fileHandleForReading : pipe.fileHandleForWriting
                closeAfter.append(end)
                return end.fileDescriptor
            case let handle as FileHandle where handle !== FileHandle.nullDevice && handle.fileDescriptor >= 0:
                return handle.fileDescriptor
            case is FileHandle:
                // Foundation's null device has no descriptor of its own.
                let null = open("/dev/null", O_RDWR | O_CLOEXEC)
                if null >= 0 { closeAfter.append(FileHandle(fileDescriptor: null, closeOnDealloc: false)) }
                return null
            default:
                return standard
            }
        }
        let fds = [
            descriptor(standardInput, standard: 0, reads: true), descriptor(standardOutput, standard: 1, reads: false),
            descriptor(standardError, standard: 2, reads: false),
        ]
        let started: pid_t
        do {
            started = try HostSpawn.spawn(
                executable: path, arguments: argv, environment: environment ?? ProcessInfo.processInfo.environment, descriptors: fds)
        } catch {
            for handle in closeAfter { try? handle.close() }
            throw ChildProcessError("cannot start \(path): \(error)")
        }
        // The child has its own copies: the test's copies of the child's ends go, so that reading a pipe ends with the
        // child's output.
        for handle in closeAfter { try? handle.close() }
        condition.withLock { pid = started }
        Thread.detachNewThread { [self] in
            // Waited for without reaping first, then reaped under the lock that `signal` takes: until `status` is
            // set, the pid is still the child's, so a signal never reaches a process that took its number.
            var info = siginfo_t()
            var waited: Int32
            repeat { waited = waitid(P_PID, id_t(started), &info, WEXITED | WNOWAIT) } while waited < 0 && errno == EINTR
            condition.withLock {
                var raw: Int32 = 0
                var reaped: pid_t
                repeat { reaped = waitpid(started, &raw, 0) } while reaped < 0 && errno == EINTR
                // Reaped elsewhere (SIGCHLD ignored, a waitpid(-1)): not a clean exit, which would let a test pass.
                status = reaped == started ? raw : Self.unknownStatus
                condition.broadcast()
            }
            terminationHandler?(self)
        }
    }

    public func waitUntilExit() {
        condition.withLock {
            while status == nil { condition.wait() }
        }
    }

    /// Waits off the cooperative pool and returns ``terminationStatus``.
    public func exitStatus() async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { [self] in
                waitUntilExit()
                continuation.resume(returning: terminationStatus)
            }
        }
    }

    /// The status recorded when the child was reaped by someone else: as if SIGKILL had ended it.
    static let unknownStatus: Int32 = SIGKILL

    /// SIGTERM, while it runs (its pid is reaped only under the lock, as its status is recorded, so it names no other
    /// process).
    public func terminate() { signal(SIGTERM) }

    public func interrupt() { signal(SIGINT) }

    public func signal(_ number: Int32) {
        condition.withLock {
            if pid != 0, status == nil { kill(pid, number) }
        }
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
