import CAgentBoxSandbox
import Foundation
import NIOCore
import NIOPosix

/// A process running in a sandbox: its pid (in the sandbox's view), its output pipes, its stdin, and its exit.
public final class SandboxProcess: Sendable {
    /// The pid inside the sandbox.
    public let pid: Int32
    let id: UInt64
    private let supervisor: Supervisor
    /// Standard output, to be read to its end with `executeThenClose`.
    public let stdout: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    /// Standard error, likewise.
    public let stderr: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private let stdin: (any Channel)?

    init(
        pid: Int32, id: UInt64, supervisor: Supervisor, stdout: NIOAsyncChannel<ByteBuffer, ByteBuffer>,
        stderr: NIOAsyncChannel<ByteBuffer, ByteBuffer>, stdin: (any Channel)?
    ) {
        self.pid = pid
        self.id = id
        self.supervisor = supervisor
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin
    }

    deinit {
        supervisor.forget(id)
    }

    /// Starts `spec` through `supervisor`.
    static func start(_ spec: SandboxProcessSpec, supervisor: Supervisor) async throws -> SandboxProcess {
        let input: ByteBuffer?
        let keepStdinOpen: Bool
        switch spec.stdin {
        case .empty: (input, keepStdinOpen) = (nil, false)
        case .data(let bytes): (input, keepStdinOpen) = (ByteBuffer(bytes: bytes), false)
        case .pipe: (input, keepStdinOpen) = (nil, true)
        }
        let stdinPipe = try PipePair()
        let stdoutPipe: PipePair, stderrPipe: PipePair
        do {
            stdoutPipe = try PipePair()
            stderrPipe = try PipePair()
        } catch {
            close(stdinPipe.read)
            close(stdinPipe.write)
            throw error
        }
        let started: (id: UInt64, pid: Int32)
        do {
            started = try await supervisor.spawn(spec, stdin: stdinPipe.read, stdout: stdoutPipe.write, stderr: stderrPipe.write)
        } catch {
            [stdinPipe.read, stdinPipe.write, stdoutPipe.read, stdoutPipe.write, stderrPipe.read, stderrPipe.write].forEach { close($0) }
            throw error
        }
        // The supervisor holds its own copies now; ours of the child's ends must go, or EOF never comes.
        [stdinPipe.read, stdoutPipe.write, stderrPipe.write].forEach { close($0) }
        let group = MultiThreadedEventLoopGroup.singleton
        func reader(_ fd: Int32) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
            try await NIOPipeBootstrap(group: group).takingOwnershipOfDescriptor(input: fd) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        }
        let stdout: NIOAsyncChannel<ByteBuffer, ByteBuffer>, stderr: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            stdout = try await reader(stdoutPipe.read)
            stderr = try await reader(stderrPipe.read)
        } catch {
            // No process object will ask for its exit: it is killed and its slot let go.
            supervisor.killTree(started.id)
            supervisor.forget(started.id)
            throw error
        }
        var stdinChannel: (any Channel)?
        if keepStdinOpen || input != nil {
            let channel = try await NIOPipeBootstrap(group: group).takingOwnershipOfDescriptor(output: stdinPipe.write).get()
            if let input {
                // Written while the caller already reads the output: a process that writes before it reads would
                // otherwise block on a full pipe while we block on its stdin. Not reading the input is no error.
                Task {
                    try? await channel.writeAndFlush(input).get()
                    if !keepStdinOpen { try? await channel.close().get() }
                }
            }
            stdinChannel = keepStdinOpen ? channel : nil
        } else {
            close(stdinPipe.write)
        }
        return SandboxProcess(pid: started.pid, id: started.id, supervisor: supervisor, stdout: stdout, stderr: stderr, stdin: stdinChannel)
    }

    /// Writes to the process's stdin; throws when stdin is closed or the process has exited.
    public func write(stdin data: ByteBuffer) async throws {
        guard let stdin else { throw SandboxError(.stopped, "stdin is closed") }
        do {
            try await stdin.writeAndFlush(data).get()
        } catch {
            throw SandboxError(.stopped, "stdin is closed")
        }
    }

    /// Closes stdin (the process reads end of file).
    public func closeStdin() async {
        try? await stdin?.close().get()
    }

    /// Sends `signal` to the process's group.
    public func signal(_ signal: Int32) {
        supervisor.signal(id, signal)
    }

    /// SIGKILLs the process and everything it started.
    public func killTree() {
        supervisor.killTree(id)
    }

    /// How the process ended; returns once it has.
    public func exitStatus() async -> SandboxExitStatus {
        await supervisor.exitStatus(id)
    }
}
