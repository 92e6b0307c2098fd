import AgentBox
import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The preview proxy (`/preview/{token}/…`, and `{token}.{domain}` with `serve --preview-domain`), at the level of
/// the connection: requests are relayed part by part, as they arrive, to a keep-alive connection into the
/// workspace that lives on the client connection's own event loop, so that a proxied request costs no task, no
/// actor hop and no thread hop once the connection is set up.
///
/// It sits in every HTTP/1 connection's pipeline before the routes, and before Hummingbird's conversion of NIO's HTTP/1
/// parts into HTTPTypes (``PreviewProxyInstaller`` puts it there): a proxied request is relayed as NIO parsed it, with
/// no conversion either way. Requests that are not for a preview, and WebSocket upgrades (relayed by the preview
/// route), go on unchanged. One request is answered at a time per connection, in order: a request that arrives while
/// the other kind is being answered waits, with reading paused, until that answer has ended.
///
/// The first preview request of a connection resolves the token (404 for an unknown, expired or revoked one; one
/// answer for all), boots the workspace if it sleeps, takes an activity that holds it awake, and connects to the
/// port inside (``PreviewUpstream``). Later requests check the token against the cache of resolved tokens (revoking
/// clears it) and reuse the connection. The connection into the workspace closes between one and two periods of
/// `AgentBoxConfiguration.previewConnectionIdle` after its last answer (``PreviewUpstreamHandler``), when the client's
/// closes, or when the workspace's server closes it; its activity ends with it.
///
/// Every decision is the ``PreviewProxyStateMachine``'s: this handler tells it what happens on the two connections and
/// performs the actions it returns.
final class PreviewProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let manager: WorkspaceManager
    let previewDomain: String?
    let logger: Logger

    private var context: ChannelHandlerContext?
    private var machine: PreviewProxyStateMachine
    /// The connection into a workspace that the state machine links to (or is being offered again).
    private var upstream: PreviewUpstream?
    private var upstreamsOpened: UInt64 = 0
    /// A WebSocket's bytes are being relayed (``PreviewByteRelay``): this handler only lets reads through.
    private var relaying = false
    /// The request being resolved waits for a `100 Continue` (``sendContinueIfOwed(_:)``).
    private var continueOwed = false
    /// It was given: a failure after it leaves the connection open (the client sends its body, which is dropped).
    private var continueSent = false
    /// A preview request's body did not parse: the decoder's later errors are this one's echo.
    private var bodyFailed = false

    init(manager: WorkspaceManager, previewDomain: String?, serverToken: String? = nil, logger: Logger) {
        self.manager = manager
        self.previewDomain = previewDomain
        self.logger = logger
        machine = PreviewProxyStateMachine(previewDomain: previewDomain, relaysWebSockets: manager.cluster == nil, serverToken: serverToken)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        machine.clientConnected(from: context.channel.remoteAddress?.ipAddress)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        _ = machine.channelInactive()
        dropUpstream()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.channelInactive(), context: context)
        context.fireChannelInactive()
    }

    // MARK: The client's side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        perform(machine.requestPartReceived(unwrapInboundIn(data)), context: context)
    }

    func read(context: ChannelHandlerContext) {
        if relaying || machine.readRequested() { context.read() }
    }

    /// A preview request's body that NIO's parser refuses fails that exchange here (the routes answered it before,
    /// ahead of or inside the preview's answer). Any other error goes on.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if bodyFailed { return }
        if error is HTTPParserError, let action = machine.requestBodyFailed(error) {
            bodyFailed = true
            perform(action, context: context)
            return
        }
        context.fireErrorCaught(error)
    }

    /// Answers from the routes go on unchanged; the end of one may let a waiting request go on.
    ///
    /// Once the connection is a WebSocket's (``relaying``), nothing the routes write goes on: it would be HTTP in the
    /// middle of the relayed bytes, and after ``startRelay(_:)`` an HTTP part reaching the socket with no encoder left
    /// is a fatal error (CI saw it: the routes' answer to bytes a client sent behind a marked upgrade, which their
    /// parser took for a malformed next request). Dropped as written, so that the routes go on waiting for a request
    /// that never comes, and the relay is left alone.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if relaying {
            promise?.succeed(())
            return
        }
        let ended: Bool
        if case .end = unwrapOutboundIn(data) { ended = true } else { ended = false }
        context.write(data, promise: promise)
        if ended { perform(machine.routeAnswerEnded(), context: context) }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The client reads slowly: stop reading the workspace's answer until it catches up.
        if let upstream, upstream.channel.isActive {
            upstream.channel.setOption(.autoRead, value: context.channel.isWritable).whenComplete { _ in }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: The workspace's side (called by PreviewUpstreamHandler, on this loop)

    func upstreamRead(_ part: HTTPClientResponsePart, from source: PreviewUpstream) {
        guard let context else { return }
        perform(machine.upstreamResponsePart(part, from: source.id), context: context)
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamInactive(_ source: PreviewUpstream) {
        source.end()
        if upstream === source { upstream = nil }
        guard let context else { return }
        perform(machine.upstreamInactive(source.id), context: context)
    }

    func upstreamWritabilityChanged(_ source: PreviewUpstream) {
        guard let context else { return }
        if machine.upstreamWritabilityChanged(source.id, isWritable: source.channel.isWritable) { context.read() }
    }

    func upstreamIsIdle(_ source: PreviewUpstream) -> Bool {
        machine.upstreamIdle(source.id)
    }

    // MARK: Performing the state machine's actions

    private func perform(_ action: PreviewProxyStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .forwardToRoutes(let part):
            context.fireChannelRead(wrapInboundOut(part))
        case .resolve(let resolution):
            manager.metrics.previewRequests.increment()
            resolve(resolution, context: context)
        case .sendRequest(let head, let pending):
            guard let upstream else { return }
            upstream.channel.write(HTTPClientRequestPart.head(head), promise: nil)
            for part in pending { upstream.write(part) }
            upstream.channel.flush()
            if machine.resumeReading() { context.read() }
        case .forwardToUpstream(let part):
            guard let upstream else { return }
            upstream.write(part)
            upstream.channel.flush()
        case .writeResponseHead(let head):
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case .writeResponseBody(let buffer):
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .endResponse(let end):
            endAnswer(end, context: context)
        case .answer(.head(let head), let end):
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            endAnswer(end, context: context)
        case .answer(.problem(let error), let end):
            let (head, body) = ProblemError.from(error, logger: logger).http1Answer(adding: end.closesConnection ? ["connection": "close"] : [:])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            endAnswer(end, context: context)
        case .drain:
            drain(context: context)
        case .closeUpstream(let id):
            closeUpstream(id)
        case .closeConnection(let id):
            if let id { closeUpstream(id) }
            context.close(promise: nil)
        case .relayWebSocket(let head, let id):
            guard let source = upstream, source.id == id else {
                context.close(promise: nil)
                return
            }
            upstream = nil
            relaying = true
            context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)
            // Out of the read that brought the `101` (the workspace's HTTP decoder is still in its decode loop).
            context.eventLoop.assumeIsolated().execute { self.startRelay(source) }
        }
    }

    /// Takes HTTP out of both connections' pipelines (what their parsers held after the upgrade goes on as bytes)
    /// and relays their bytes to each other.
    private func startRelay(_ source: PreviewUpstream) {
        guard let context, context.channel.isActive, source.channel.isActive else {
            source.close()
            self.context?.close(promise: nil)
            return
        }
        do {
            let pipeline = context.pipeline.syncOperations
            let decoder = try pipeline.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self)
            let encoder = try pipeline.context(handlerType: HTTPResponseEncoder.self)
            let clientSide = PreviewByteRelay(upstream: nil)
            try pipeline.addHandler(clientSide, position: .after(decoder.handler))
            let upstreamSide = try source.becomeRelay()
            PreviewByteRelay.link(clientSide, upstreamSide)
            pipeline.removeHandler(context: encoder, promise: nil)
            // The workspace side's response parser goes first. A parser leaves its pipeline from a task of its own,
            // handing on what it held then, and the two tasks run in the order asked for: so when the client's parser
            // hands on what the client sent right behind its upgrade (a first frame in the same write), the workspace's
            // pipeline no longer holds the response parser, which takes every write for an HTTP request part (a byte
            // buffer there was a fatal error: the whole server ended).
            try source.removeDecoder()
            pipeline.removeHandler(context: decoder, promise: nil)
            // A parser hands on what it held from a task of its own, outside any read (so no read-complete flushes it).
            context.eventLoop.assumeIsolated().execute {
                clientSide.flushIfNeeded()
                upstreamSide.flushIfNeeded()
            }
        } catch {
            logger.debug("cannot relay a preview WebSocket", metadata: ["error": "\(error)"])
            source.close()
            context.close(promise: nil)
        }
    }

    /// Writes the end of an answer to a preview request, then closes the connection once it is written (after the
    /// client's `Connection: close`) or hands on what waited.
    private func endAnswer(_ end: PreviewProxyStateMachine.AnswerEnd, context: ChannelHandlerContext) {
        if end.closesConnection {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
            if let id = end.closeUpstream { closeUpstream(id) }
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if let id = end.closeUpstream { closeUpstream(id) }
        drain(context: context)
    }

    /// Hands on what waited, as far as the connection is free for it, then resumes reading if it may.
    private func drain(context: ChannelHandlerContext) {
        var handedToRoutes = false
        while let action = machine.nextWaitingPart() {
            if case .forwardToRoutes = action { handedToRoutes = true }
            perform(action, context: context)
        }
        // The routes' reader (NIOAsyncChannel) takes what it was handed when a read completes; these parts came
        // outside the channel's own read, so that is said here.
        if handedToRoutes { context.fireChannelReadComplete() }
        if machine.resumeReading() { context.read() }
    }

    /// Finds where a preview request's token leads: at once when it still leads to the open connection's workspace and
    /// port, else off the loop (closing the open connection), then tells the state machine.
    private func resolve(_ resolution: PreviewProxyStateMachine.Resolution, context: ChannelHandlerContext) {
        // `Expect` is not sent on (see PreviewExchange.upstreamHead): the `100 Continue` is given here, once the token
        // is known to lead somewhere, so that a client with an unknown one is told 404 before it sends its body.
        continueOwed = resolution.sendsContinue
        continueSent = false
        if let id = resolution.reusable, let current = upstream, current.id == id, current.channel.isActive,
            let cached = manager.cachedPreview(token: resolution.token), cached.key == current.key, cached.port == current.port
        {
            sendContinueIfOwed(context)
            perform(machine.resolved(port: cached.port, upstream: current.link), context: context)
            return
        }
        dropUpstream()
        PreviewUpstream.find(token: resolution.token, connects: resolution.connects, manager: manager, on: context.eventLoop)
            .assumeIsolated().whenComplete { result in
                self.found(result)
            }
    }

    /// Gives the `100 Continue` a request with `Expect: 100-continue` waits for, when its token resolved.
    private func sendContinueIfOwed(_ context: ChannelHandlerContext) {
        guard continueOwed else { return }
        continueOwed = false
        continueSent = true
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
    }

    private func found(_ result: Result<PreviewUpstream.Destination, any Error>) {
        guard let context else {
            // A connection made for a client that has left is closed with its socket.
            if case .success(let destination) = result, destination.socket != nil { destination.release() }
            return
        }
        let destination: PreviewUpstream.Destination
        switch result {
        case .failure(let error):
            continueOwed = false
            perform(machine.resolutionFailed(error), context: context)
            return
        case .success(let found):
            destination = found
        }
        sendContinueIfOwed(context)
        let connecting: EventLoopFuture<any Channel>
        if let node = destination.remote {
            connecting = PreviewUpstream.connect(to: node, on: context.eventLoop)
        } else if let socket = destination.socket {
            connecting = PreviewUpstream.connect(socket: socket, on: context.eventLoop)
        } else {
            perform(machine.resolved(port: destination.port, upstream: nil), context: context)
            return
        }
        upstreamsOpened += 1
        let id = PreviewProxyStateMachine.UpstreamID(rawValue: upstreamsOpened)
        connecting.assumeIsolated().whenComplete { result in
            let channel: any Channel
            switch result {
            case .failure(let error):
                destination.release()
                if let context = self.context { self.perform(self.machine.resolutionFailed(error, continueSent: self.continueSent), context: context) }
                return
            case .success(let connected):
                channel = connected
            }
            guard let context = self.context else {
                channel.close(promise: nil)
                destination.release()
                return
            }
            do {
                self.upstream = try PreviewUpstream(id: id, channel: channel, destination: destination, proxy: self)
            } catch {
                self.perform(self.machine.resolutionFailed(error, continueSent: self.continueSent), context: context)
                return
            }
            self.perform(self.machine.resolved(port: destination.port, upstream: self.upstream?.link), context: context)
        }
    }

    private func closeUpstream(_ id: PreviewProxyStateMachine.UpstreamID) {
        guard upstream?.id == id else { return }
        dropUpstream()
    }

    /// Closes the connection into the workspace, detached first: closing on this loop reports it inactive at once.
    private func dropUpstream() {
        let old = upstream
        upstream = nil
        old?.close()
    }
}
