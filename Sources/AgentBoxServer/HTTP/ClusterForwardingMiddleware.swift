import AgentBox
import AgentBoxAPI
import AgentBoxStore
import AsyncAlgorithms
import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1

/// In a cluster, sends each request for a workspace that another node serves to that node, and streams its answer
/// back: JSON, file transfers and event streams (SSE) alike, each in both directions as it comes, with the body's
/// backpressure. A request for a workspace no live node serves takes it here (``WorkspaceManager/claimLocally(_:)``
/// via ``ClusterCoordinator/claim(_:)``), after waiting for a dead owner's lease to run out.
///
/// A forwarded request carries ``forwardedHeader`` (this node's id): the node that receives it serves it or refuses
/// with 503 (the lease moved while it travelled; the client tries again), never forwards it on, so no request loops.
/// The receiving node checks the caller's token again (every node knows the same tokens: they are in the shared
/// store, and `--token` is the same on every node).
struct ClusterForwardingMiddleware: RouterMiddleware {
    typealias Context = AgentBoxRequestContext
    let cluster: ClusterCoordinator
    let registry: APIRouteRegistry

    static let forwardedHeader = HTTPField.Name("X-AgentBox-Forwarded-By")!
    /// The connection to another node: a dead node is found in 2 s (a refused connection is otherwise retried for
    /// AsyncHTTPClient's default 10 s); no read timeout, since event streams are quiet for long.
    static let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(timeout: .init(connect: .seconds(2)), decompression: .disabled))
    /// Request bodies up to this size are read whole before they are forwarded; larger ones are streamed.
    static let collectedBodyBytes: Int64 = 64 << 10
    /// Headers that belong to one connection, not to the request (RFC 9110 7.6.1), and the Host the client sent.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length",
    ]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard registry.declaration(request.method, endpointPath: context.endpointPath)?.scope == .workspace,
            let key = try? WorkspaceController.key(context)
        else { return try await next(request, context) }
        switch try await cluster.claim(key) {
        case .local:
            return try await next(request, context)
        case .remote(let node):
            if let from = request.headers[Self.forwardedHeader] {
                throw ProblemError(
                    .serviceUnavailable, "workspace '\(key)' moved to node '\(node.id)' while node '\(from)' forwarded the request; try again",
                    headers: [.retryAfter: "1"])
            }
            return try await forward(request, to: node)
        }
    }

    private func forward(_ request: Request, to node: NodeRecord) async throws -> Response {
        var outbound = HTTPClientRequest(url: node.address.trimmingSuffix("/") + request.uri.description)
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where !Self.hopByHop.contains(field.name.canonicalName) {
            outbound.headers.add(name: field.name.rawName, value: field.value)
        }
        outbound.headers.replaceOrAdd(name: Self.forwardedHeader.rawName, value: cluster.options.nodeId)
        if let length = request.headers[.contentLength].flatMap(Int64.init), length <= Self.collectedBodyBytes {
            // A small body (a command, a prompt, JSON) is sent in one write: streaming it costs more than it holds.
            outbound.body = .bytes(try await request.body.collect(upTo: Int(length)))
        } else if let length = request.headers[.contentLength].flatMap(Int64.init) {
            outbound.body = .stream(request.body, length: .known(length))
        } else if request.method == .get || request.method == .head || request.method == .delete {
            outbound.body = nil
        } else {
            outbound.body = .stream(request.body, length: .unknown)
        }
        let cluster = cluster
        let sent = outbound
        let answer: HTTPClientResponse
        let collected: ByteBuffer?
        do {
            // No deadline: event streams last as long as their client, and a command or a prompt as long as it runs;
            // the owner's own timeouts apply. A node that stops without closing its connections (paused, cut off)
            // is found by its heartbeat instead: the answer is raced against its silence. A small answer of known
            // length (JSON, mostly) is read whole inside the same race, and sent on in one write.
            (answer, collected) = try await withThrowingTaskGroup(of: (HTTPClientResponse, ByteBuffer?)?.self) { group in
                group.addTask {
                    let answer = try await Self.client.execute(sent, deadline: .distantFuture)
                    guard let length = answer.headers.first(name: "content-length").flatMap(Int64.init), length <= Self.collectedBodyBytes else {
                        return (answer, nil)
                    }
                    return (answer, try await answer.body.collect(upTo: Int(length)))
                }
                group.addTask {
                    await cluster.waitUntilSilent(node)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let answer = first else { throw OwnerFellSilent() }
                return answer
            }
        } catch {
            cluster.reportUnreachable(node)
            throw ProblemError(
                .serviceUnavailable, "node '\(node.id)', which serves this workspace, does not answer (\(error)); try again shortly",
                headers: [.retryAfter: "1"])
        }
        var headers = HTTPFields()
        for (name, value) in answer.headers where !Self.hopByHop.contains(name.lowercased()) {
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
        }
        let length = answer.headers.first(name: "content-length").flatMap(Int.init)
        if let length { headers[.contentLength] = String(length) }
        let status = HTTPResponse.Status(code: Int(answer.status.code), reasonPhrase: answer.status.reasonPhrase)
        if let collected {
            return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: collected))
        }
        return Response(
            status: status, headers: headers,
            body: ResponseBody(contentLength: length) { writer in
                // The body is relayed through a channel that holds one chunk at a time (the owner's pace is the
                // client's), so that the owner falling silent in the middle of a stream ends it too.
                let chunks = AsyncThrowingChannel<ByteBuffer, any Error>()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            for try await chunk in answer.body { await chunks.send(chunk) }
                            chunks.finish()
                        } catch {
                            chunks.fail(error)
                        }
                    }
                    group.addTask {
                        await cluster.waitUntilSilent(node)
                        chunks.fail(OwnerFellSilent())
                    }
                    defer { group.cancelAll() }
                    for try await chunk in chunks { try await writer.write(chunk) }
                }
                try await writer.finish(nil)
            })
    }
}

/// The node a request was forwarded to stopped heart-beating before it answered.
struct OwnerFellSilent: Error, CustomStringConvertible {
    var description: String { "it stopped heart-beating" }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
