import CAgentBoxSandbox
import Foundation
import NIOCore
import NIOPosix

/// A process running on a pseudo-terminal of its sandbox (a shell): the terminal's bytes both ways, its size, and
/// the process's exit.
public final class SandboxTerminal: Sendable {
    /// The pid inside the sandbox.
    public let pid: Int32
    let id: UInt64
    private let supervisor: Supervisor
    /// The terminal's master side: what the process writes arrives inbound, what is written goes to its input.
    /// Read it to its end with `executeThenClose`; it ends when the process and everything holding the terminal
    /// have exited.
    public let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    /// A second descriptor of the master, for resizing while the channel owns the first.
    private let control: Int32

    init(pid: Int32, id: UInt64, supervisor: Supervisor, channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, control: Int32) {
        self.pid = pid
        self.id = id
        self.supervisor = supervisor
        self.channel = channel
        self.control = control
    }

    deinit {
        close(control)
        supervisor.forget(id)
    }

    /// Starts `spec` on a new terminal of `cols` × `rows` through `supervisor`.
    static func start(_ spec: SandboxProcessSpec, cols: Int, rows: Int, supervisor: Supervisor) async throws -> SandboxTerminal {
        let started = try await supervisor.spawnTerminal(spec, cols: cols, rows: rows)
        let control = fcntl(started.master, F_DUPFD_CLOEXEC, 0)
        guard control >= 0 else {
            close(started.master)
            supervisor.killTree(started.id)
            supervisor.forget(started.id)
            throw SandboxError.errno("dup")
        }
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .takingOwnershipOfDescriptor(inputOutput: started.master) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            close(control)
            supervisor.killTree(started.id)
            supervisor.forget(started.id)
            throw SandboxError(.system, "cannot read the terminal: \(error)")
        }
        return SandboxTerminal(pid: started.pid, id: started.id, supervisor: supervisor, channel: channel, control: control)
    }

    /// Sets the terminal's size; the process's foreground group gets SIGWINCH.
    public func resize(cols: Int, rows: Int) throws {
        guard ab_set_window_size(control, UInt16(clamping: cols), UInt16(clamping: rows)) == 0 else {
            throw SandboxError.errno("resize the terminal")
        }
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
