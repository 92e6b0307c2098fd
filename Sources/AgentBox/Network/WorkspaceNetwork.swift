import AgentBoxAPI
import AsyncHTTPClient
import CAgentBoxSandbox
import Foundation
import NIOCore
import NIOPosix

/// The server's foothold in one awake workspace's network: an event loop whose only thread has joined the
/// workspace's network namespace, so that every socket made on it lives there, and an HTTP client on that loop.
/// `127.0.0.1:PORT` through this client is the workspace's own loopback, which nothing else on the host can reach.
///
/// No helper process runs inside the workspace. The loop lives while the workspace is awake (its thread keeps the
/// namespace alive, so it is shut down when the workspace sleeps) and is made on first use.
final class WorkspaceNetwork: Sendable {
    let group: MultiThreadedEventLoopGroup
    let client: HTTPClient

    private init(group: MultiThreadedEventLoopGroup, client: HTTPClient) {
        self.group = group
        self.client = client
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
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(2)), decompression: .disabled)
        // Enough connections per port for a browser's and a load test's parallel requests (the default is 8).
        configuration.connectionPool = .init(idleTimeout: .seconds(10), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        configuration.httpVersion = .http1Only
        let client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
        return WorkspaceNetwork(group: group, client: client)
    }

    func shutdown() async {
        try? await client.shutdown()
        try? await group.shutdownGracefully()
    }

    /// The URL of `target` (a path, query included) on port `port` of the workspace's loopback.
    static func url(port: Int, target: String) -> String { "http://127.0.0.1:\(port)\(target)" }

    /// Whether `error` means nothing listens on the port (yet).
    static func isRefused(_ error: any Error) -> Bool {
        if let error = error as? NIOConnectionError {
            return error.connectionErrors.contains { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }
        }
        if let error = error as? IOError { return error.errnoCode == ECONNREFUSED }
        return false
    }
}
