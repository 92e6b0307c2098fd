import AgentBoxAPI
import CAgentBoxSandbox
import Foundation
import NIOCore
import NIOPosix

/// The server's foothold in one awake workspace's network: an event loop whose only thread has joined the
/// workspace's network namespace. A socket that this thread makes (``WorkspaceRuntime/connectedSocket(port:)``)
/// lives there: its `127.0.0.1:PORT` is the workspace's own loopback, which nothing else on the host can reach.
/// Clients that make their own sockets (HTTP client libraries) are not used over it: where they call `socket()` is
/// theirs to decide, and a socket made on another thread would reach the host's loopback instead.
///
/// No helper process runs inside the workspace. The loop lives while the workspace is awake (its thread keeps the
/// namespace alive, so it is shut down when the workspace sleeps) and is made on first use.
final class WorkspaceNetwork: Sendable {
    let group: MultiThreadedEventLoopGroup

    private init(group: MultiThreadedEventLoopGroup) {
        self.group = group
    }

    /// Joins the namespace `fd` (and closes it); `nil` stays in the host's network (the unsandboxed backend).
    static func make(namespace fd: Int32?) async throws -> WorkspaceNetwork {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        if let fd {
            defer { close(fd) }
            do {
                try await group.next().submit {
                    guard ab_join_network_namespace(fd) == 0 else {
                        throw AgentBoxError(.internalError, "cannot join the workspace's network: \(String(cString: strerror(errno)))")
                    }
                }.get()
            } catch {
                try? await group.shutdownGracefully()
                throw error
            }
        }
        return WorkspaceNetwork(group: group)
    }

    func shutdown() async {
        try? await group.shutdownGracefully()
    }


    /// Whether `error` means nothing listens on the port (yet).
    static func isRefused(_ error: any Error) -> Bool {
        if let error = error as? NIOConnectionError {
            return error.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
        }
        if let error = error as? IOError { return error.errnoCode == ECONNREFUSED }
        return false
    }
}
