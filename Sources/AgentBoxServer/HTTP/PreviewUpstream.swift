import AgentBox
import AgentBoxAPI
import AgentBoxStore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A connection into a workspace for the preview proxy: an HTTP/1 client channel to one port inside the workspace,
/// driven on the client connection's own event loop, bound to the workspace and port its token led to, and holding
/// the activity that keeps the workspace awake until the connection closes.
///
/// ``PreviewProxyHandler`` keeps at most one per client connection, the one its state machine links to, and reuses it
/// for every request whose token still leads to the same workspace and port.
final class PreviewUpstream {
    let id: PreviewProxyStateMachine.UpstreamID
    let channel: any Channel
    let key: WorkspaceKey
    let port: Int
    private let release: @Sendable () -> Void
    private var released = false

    /// Sets up a connection on `channel` (connected by ``connect(socket:on:)``) whose answers go to `proxy`.
    init(id: PreviewProxyStateMachine.UpstreamID, channel: any Channel, destination: Destination, proxy: PreviewProxyHandler) throws {
        self.id = id
        self.channel = channel
        key = destination.key
        port = destination.port
        release = destination.release
        do {
            try channel.pipeline.syncOperations.addHandler(PreviewUpstreamHandler(proxy: proxy, upstream: self))
        } catch {
            close()
            throw error
        }
    }

    /// What the state machine knows of this connection.
    var link: PreviewProxyStateMachine.UpstreamLink { .init(id: id, isWritable: channel.isWritable) }

    /// Writes a part of the client's request body (or its end); the caller flushes.
    func write(_ part: HTTPServerRequestPart) {
        switch part {
        case .head: break  // The head is built for the workspace's server (PreviewExchange.upstreamHead).
        case .body(let buffer): channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
        case .end: channel.write(HTTPClientRequestPart.end(nil), promise: nil)
        }
    }

    func close() {
        channel.close(promise: nil)
        end()
    }

    /// For a WebSocket the workspace's server took: replaces this connection's HTTP handlers, but for its response
    /// parser (``removeDecoder()``, once the relay is linked), with the relay's side, which then owns this connection.
    func becomeRelay() throws -> PreviewByteRelay {
        let pipeline = channel.pipeline.syncOperations
        pipeline.removeHandler(context: try pipeline.context(handlerType: PreviewUpstreamHandler.self), promise: nil)
        pipeline.removeHandler(context: try pipeline.context(handlerType: HTTPRequestEncoder.self), promise: nil)
        let relay = PreviewByteRelay(upstream: self)
        try pipeline.addHandler(relay)
        // The proxy may have paused it for a slow client; the relay holds reads itself from now on.
        try channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
        return relay
    }

    /// Removes the response parser: what it held after the `101` goes on, as bytes, to the relay.
    func removeDecoder() throws {
        let pipeline = channel.pipeline.syncOperations
        pipeline.removeHandler(context: try pipeline.context(handlerType: ByteToMessageHandler<HTTPResponseDecoder>.self), promise: nil)
    }

    /// Ends the activity that holds the workspace awake (once).
    func end() {
        guard !released else { return }
        released = true
        release()
    }

    // MARK: Finding where a token leads

    /// Where a token leads: the workspace and port, and when asked for, a socket connected to that port inside the
    /// workspace, with the end of the activity taken for it.
    struct Destination: Sendable {
        /// The port inside the workspace; ``remotePort`` when the request goes to another node of the cluster.
        var port: Int
        var key: WorkspaceKey
        var socket: WorkspaceSocket?
        var release: @Sendable () -> Void
        /// In a cluster: the node that serves the workspace, to which the request goes as it came (``port`` is then
        /// ``remotePort``, and ``socket`` nil).
        var remote: NodeRecord? = nil
    }

    /// The port of a ``Destination`` on another node (no port inside a workspace is 0).
    static let remotePort = 0

    /// Resolves `token` (404 for an unknown, expired or revoked one), and when `connects`, boots the workspace if it
    /// sleeps, takes an activity that holds it awake, and connects to the port inside (waiting, bounded, until it
    /// accepts; then 502). The socket is made by the workspace's network loop, a thread that joined its network
    /// namespace; ``connect(socket:on:)`` then drives it on the client connection's loop.
    static func find(token: String, connects: Bool, manager: WorkspaceManager, on loop: any EventLoop) -> EventLoopFuture<Destination> {
        let promise = loop.makePromise(of: Destination.self)
        promise.completeWithTask {
            if let cluster = manager.cluster {
                let (key, _) = try await manager.previewTarget(token: token)
                if case .remote(let node) = try await cluster.claim(key) {
                    return Destination(port: remotePort, key: key, socket: nil, release: {}, remote: node)
                }
            }
            let (runtime, port) = try await manager.resolvePreview(token: token)
            guard connects else { return Destination(port: port, key: runtime.key, socket: nil, release: {}) }
            let activity = try await runtime.beginActivity()
            do {
                let socket = try await runtime.connectedSocket(port: port)
                return Destination(port: port, key: runtime.key, socket: socket) {
                    Task { await runtime.endActivity(activity) }
                }
            } catch {
                await runtime.endActivity(activity)
                throw error
            }
        }
        return promise.futureResult
    }

    /// An HTTP/1 client channel on `socket`, driven by `loop` (closed when unused: ``PreviewUpstreamHandler``).
    static func connect(socket: WorkspaceSocket, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        socket.channel(on: loop, initializer: initialize)
    }

    /// An HTTP/1 client channel to another node of the cluster (`node.address`), driven by `loop`.
    static func connect(to node: NodeRecord, on loop: any EventLoop) -> EventLoopFuture<any Channel> {
        guard let url = URL(string: node.address), let host = url.host else {
            return loop.makeFailedFuture(AgentBoxError(.badGateway, "node '\(node.id)' has no usable address: \(node.address)"))
        }
        return ClientBootstrap(group: loop).channelInitializer(initialize).connect(host: host, port: url.port ?? 80)
    }

    private static func initialize(_ channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            // The head is built from validated fields (HTTPTypes), so NIO need not check every header again.
            // What follows a `101` in the same read is kept for the WebSocket relay (PreviewByteRelay).
            try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes, enableOutboundHeaderValidation: false)
        }
    }
}

/// The workspace side of a preview connection: hands what happens on it to the client's ``PreviewProxyHandler``, on
/// the same event loop, and closes it once unused.
///
/// Unused: nothing read from it for a whole period of `AgentBoxConfiguration.previewConnectionIdle`, and no request
/// under way on it (a slow answer is never cut). One timer per connection, set again each period, and a count of
/// reads: NIO's `IdleStateHandler`, used before, took a promise and a callback for every write and sat in the
/// connection's pipeline both ways (~2-3% of the proxy's CPU per request).
final class PreviewUpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    let proxy: PreviewProxyHandler
    let upstream: PreviewUpstream
    private let idlePeriod: TimeAmount
    private var reads = 0
    private var readsAtLastCheck = -1
    private var idleCheck: Scheduled<Void>?
    /// Out of the pipeline (the WebSocket relay took the connection over): a check already due this tick does nothing.
    private var removed = false

    init(proxy: PreviewProxyHandler, upstream: PreviewUpstream) {
        self.proxy = proxy
        self.upstream = upstream
        idlePeriod = max(.milliseconds(1), TimeAmount(proxy.manager.configuration.previewConnectionIdle))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        scheduleIdleCheck(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        idleCheck?.cancel()
        idleCheck = nil
    }

    private func scheduleIdleCheck(context: ChannelHandlerContext) {
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(in: idlePeriod) { [self] in
            idleCheck = nil
            guard !removed, context.channel.isActive else { return }
            if reads == readsAtLastCheck, proxy.upstreamIsIdle(upstream) {
                context.close(promise: nil)
                return
            }
            readsAtLastCheck = reads
            scheduleIdleCheck(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads &+= 1
        proxy.upstreamRead(unwrapInboundIn(data), from: upstream)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        proxy.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
        proxy.upstreamInactive(upstream)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        proxy.upstreamWritabilityChanged(upstream)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
