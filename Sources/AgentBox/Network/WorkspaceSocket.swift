import Glibc
import NIOCore
import NIOPosix
import Synchronization

/// A TCP connection to a port on a workspace's own loopback, made inside the workspace's network namespace
/// (``WorkspaceRuntime/connectedSocket(port:)``), not yet driven by anything.
///
/// It owns its descriptor: ``channel(on:initializer:)`` hands it to a NIO channel on the caller's event loop (the
/// socket stays in the workspace's network whichever thread drives it), and a connection dropped unused is closed.
/// No descriptor number crosses the library's public API.
public final class WorkspaceSocket: Sendable {
    private let descriptor: Mutex<CInt>
    /// What counts the bytes of the connection: they cross the workspace's network boundary.
    let door: TrafficDoor

    init(descriptor: CInt, door: TrafficDoor) {
        self.descriptor = Mutex(descriptor)
        self.door = door
    }

    deinit {
        let fd = descriptor.withLock { $0 }
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Takes the descriptor (once); -1 when it was taken already.
    func take() -> CInt {
        descriptor.withLock { fd in
            defer { fd = -1 }
            return fd
        }
    }

    /// A client channel over this connection, driven by `loop`, set up by `initializer` behind a handler that counts
    /// its bytes as the workspace's traffic. Consumes the connection.
    public func channel(
        on loop: any EventLoop, initializer: @escaping @Sendable (any Channel) -> EventLoopFuture<Void>
    ) -> EventLoopFuture<any Channel> {
        let fd = take()
        guard fd >= 0 else { return loop.makeFailedFuture(ChannelError.alreadyClosed) }
        let door = door
        return ClientBootstrap(group: loop).channelInitializer { channel in
            do {
                try channel.pipeline.syncOperations.addHandler(TrafficCountingHandler(door: door))
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
            return initializer(channel)
        }.withConnectedSocket(fd)
    }
}
