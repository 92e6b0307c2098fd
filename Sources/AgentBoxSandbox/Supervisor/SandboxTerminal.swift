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
    /// The terminal's master side, read: what the process writes arrives inbound (its outbound side is not used: see
    /// ``write(_:)``). Read it to its end with `executeThenClose`; it ends when the process and everything holding the
    /// terminal have exited.
    public let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    /// The master's one descriptor in the server, which the channel reads. Written and resized through too, on the
    /// channel's event loop only, and only while the channel is active: it is closed on that loop, with the channel,
    /// and its number may then name anything. No other descriptor of it: each counts against the server's limit, once
    /// per awake workspace's shell.
    private let master: Int32

    init(pid: Int32, id: UInt64, supervisor: Supervisor, channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, master: Int32) {
        self.pid = pid
        self.id = id
        self.supervisor = supervisor
        self.channel = channel
        self.master = master
    }

    deinit {
        supervisor.forget(id)
    }

    /// Starts `spec` on a new terminal of `cols` × `rows` through `supervisor`.
    static func start(_ spec: SandboxProcessSpec, cols: Int, rows: Int, supervisor: Supervisor) async throws -> SandboxTerminal {
        let started = try await supervisor.spawnTerminal(spec, cols: cols, rows: rows)
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .takingOwnershipOfDescriptor(input: started.master) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            supervisor.killTree(started.id)
            supervisor.forget(started.id)
            throw SandboxError(.system, "cannot read the terminal: \(error)")
        }
        return SandboxTerminal(pid: started.pid, id: started.id, supervisor: supervisor, channel: channel, master: started.master)
    }

    /// Writes `bytes` to the terminal: the process's input. Returns once all of it is written; fails once the terminal
    /// is closed. While the terminal's input queue is full (its process does not read it), the rest is tried again
    /// after 1, 2, 4 … 64 ms: NIO watches the descriptor for reading only, and it cannot be registered a second time
    /// for writability without a second descriptor, which is what this saves. Cancellable.
    public func write(_ bytes: ByteBuffer) async throws {
        let (channel, master) = (channel.channel, master)
        var remaining = bytes
        var pause = 1
        while remaining.readableBytes > 0 {
            let chunk = remaining
            let (written, code) = try await channel.eventLoop.submit { () throws -> (Int, Int32) in
                guard channel.isActive else { throw SandboxError(.system, "the terminal is closed") }
                let written = chunk.withUnsafeReadableBytes { Glibc.write(master, $0.baseAddress, $0.count) }
                return (written, written < 0 ? errno : 0)
            }.get()
            if written > 0 {
                remaining.moveReaderIndex(forwardBy: written)
                pause = 1
            } else if code == EAGAIN || code == EWOULDBLOCK {
                try await Task.sleep(for: .milliseconds(pause))
                pause = min(pause * 2, 64)
            } else if code != EINTR {
                throw SandboxError.errno("write to the terminal", code)
            }
        }
    }

    /// Sets the terminal's size; the process's foreground group gets SIGWINCH. Fails once the terminal is closed.
    /// `applied` runs right after the size is set, in the order the sizes are set (to record it).
    ///
    /// The channel closes `master` on its loop, in the same turn that makes it inactive (a hang-up is an `EIO` on
    /// read, which closes all of it): while it is active there, `master` is still the terminal. That holds as long as
    /// its input is never closed on its own: this channel must not allow remote half-closure or be closed `.input`.
    public func resize(cols: Int, rows: Int, applied: @escaping @Sendable () -> Void = {}) async throws {
        let (channel, master) = (channel.channel, master)
        let (cols, rows) = (UInt16(clamping: cols), UInt16(clamping: rows))
        try await channel.eventLoop.submit {
            guard channel.isActive else { throw SandboxError(.system, "the terminal is closed") }
            guard ab_set_window_size(master, cols, rows) == 0 else { throw SandboxError.errno("resize the terminal") }
            applied()
        }.get()
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
