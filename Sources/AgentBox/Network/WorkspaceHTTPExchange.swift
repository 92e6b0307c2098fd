import AgentBoxAPI
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 request and its whole answer over a socket that ``WorkspaceRuntime/connectedSocket(port:)`` made
/// inside a workspace's network namespace.
///
/// Why not an HTTP client library: a client makes its own sockets, and where it makes them is not ours to decide. A
/// socket made outside the workspace's namespace reaches the host's loopback (the AgentBox API among it) whenever
/// nothing listens on that port inside. Here the socket is made and connected by
/// ``WorkspaceRuntime/connectedSocket(port:)`` on the thread that joined the namespace, and only then handed to NIO.
enum WorkspaceHTTPExchange {
    struct Answer {
        var head: HTTPResponseHead
        var body: ByteBuffer
    }

    /// Sends `head` (and `body`) on `connection`, which it takes ownership of (its bytes counted through its door),
    /// and collects the answer, at most `maxBodyBytes` of body (more: `badGateway`). Anything that is not an HTTP/1
    /// answer is `badGateway`; no answer within `timeout` is `gatewayTimeout`.
    static func send(
        _ head: HTTPRequestHead, body: ByteBuffer?, socket connection: WorkspaceSocket, group: any EventLoopGroup, timeout: Duration,
        maxBodyBytes: Int, describing port: Int
    ) async throws -> Answer {
        let socket = connection.take()
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await ClientBootstrap(group: group).withConnectedSocket(socket) { [door = connection.door] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(TrafficCountingHandler(door: door))
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        } catch {
            close(socket)
            throw AgentBoxError(.badGateway, "cannot talk to port \(port)", underlyingError: error)
        }
        return try await withThrowingTaskGroup(of: Answer?.self) { tasks in
            tasks.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(.head(head))
                    if let body, body.readableBytes > 0 { try await outbound.write(.body(.byteBuffer(body))) }
                    try await outbound.write(.end(nil))
                    var answerHead: HTTPResponseHead?
                    var collected = ByteBuffer()
                    do {
                        for try await part in inbound {
                            switch part {
                            case .head(let received) where received.status.code >= 200 || received.status.code == 101:
                                answerHead = received
                            case .head:
                                continue  // 1xx interim answers (100 Continue, 103 Early Hints)
                            case .body(var chunk):
                                guard collected.readableBytes + chunk.readableBytes <= maxBodyBytes else {
                                    throw AgentBoxError(.badGateway, "the answer of port \(port) is larger than \(maxBodyBytes >> 20) MiB; use a preview URL to stream it")
                                }
                                collected.writeBuffer(&chunk)
                            case .end:
                                if let answerHead { return Answer(head: answerHead, body: collected) }
                            }
                        }
                    } catch let error as AgentBoxError {
                        throw error
                    } catch {
                        throw AgentBoxError(.badGateway, "port \(port) did not answer with HTTP", underlyingError: error)
                    }
                    throw AgentBoxError(.badGateway, "port \(port) closed the connection before a whole answer")
                }
            }
            tasks.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { tasks.cancelAll() }
            guard let first = try await tasks.next(), let answer = first else {
                channel.channel.close(promise: nil)
                throw AgentBoxError(.gatewayTimeout, "port \(port) did not answer within \(timeout)")
            }
            return answer
        }
    }
}
