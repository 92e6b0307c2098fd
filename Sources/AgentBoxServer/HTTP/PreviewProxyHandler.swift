import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOPosix

/// The preview proxy (`/preview/{token}/…`, and `{token}.{domain}` with `serve --preview-domain`), at the level of
/// the connection: requests are relayed part by part, as they arrive, to a keep-alive connection into the
/// workspace that lives on the client connection's own event loop, so that a proxied request costs no task, no
/// actor hop and no thread hop once the connection is set up.
///
/// It sits in every HTTP/1 connection's pipeline before the routes, and before Hummingbird's conversion of NIO's HTTP/1
/// parts into HTTPTypes (``PreviewProxyInstaller`` puts it there): a proxied request is relayed as NIO parsed it, with
/// no conversion either way. Requests that are not for a preview, and WebSocket upgrades (relayed by the preview
/// route), go on unchanged. One request is
/// answered at a time per connection, in order: a request that arrives while the other kind is being answered
/// waits, with reading paused, until that answer has ended.
///
/// The first preview request of a connection resolves the token (404 for an unknown, expired or revoked one; one
/// answer for all), boots the workspace if it sleeps, takes an activity that holds it awake, and connects to the
/// port inside (waiting, bounded, until it accepts; then 502). Later requests check the token against the cache of
/// resolved tokens (revoking clears it) and reuse the connection. The connection into the workspace closes after
/// ``idleTimeout`` without a request, when the client's closes, or when the workspace's server closes it; its
/// activity ends with it.
final class PreviewProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// How long an unused connection into a workspace stays open (and holds the workspace awake).
    static let idleTimeout = TimeAmount.seconds(10)

    let manager: WorkspaceManager
    let previewDomain: String?
    let logger: Logger

    private var context: ChannelHandlerContext?
    /// Requests handed to the routes whose answers have not ended.
    private var routed = 0
    /// Where the current request's body goes.
    private var bodyTarget: BodyTarget = .none
    /// Parts of requests that wait for the answer in progress; reading is paused while any wait.
    private var waiting = CircularBuffer<HTTPServerRequestPart>()
    /// Parts went on to the routes since this was last cleared.
    private var handedToRoutes = false
    /// A `read` the pipeline asked for while paused.
    private var readHeld = false
    private var exchange: Exchange?
    private var upstream: Upstream?
    /// A connection being made into a workspace (reading is paused until it is there).
    private var connecting = false
    /// The client asked for the connection to close after this answer (`Connection: close`): nothing more is read.
    private var closing = false

    enum BodyTarget { case none, routes, preview, discard }

    /// One proxied request and its answer.
    struct Exchange {
        var token: String
        var target: String
        var prefix: String
        var request: HTTPRequestHead
        /// Request parts that arrived before the connection into the workspace was there.
        var pending: [HTTPServerRequestPart] = []
        var requestEnded = false
        var responseStarted = false
        var port = 0
        /// Body bytes went to the workspace: the request cannot be sent again.
        var bodySent = false
        /// Sent again once already, on a new connection.
        var retried = false
        /// The names the client's `Connection` headers list (hop-by-hop, so not sent on).
        var connectionListed: [String] = []
        /// The client's `Connection: close` (or HTTP/1.0 without keep-alive): the answer says so, and the connection
        /// closes after it.
        var closeAfter: Bool

        init(token: String, target: String, prefix: String, request: HTTPRequestHead) {
            self.token = token
            self.target = target
            self.prefix = prefix
            self.request = request
            connectionListed = PreviewProxy.listedInConnection(request.headers["connection"])
            closeAfter = connectionListed.contains("close") || (request.version.minor == 0 && !connectionListed.contains("keep-alive"))
        }
    }

    /// A connection into a workspace, bound to one token's workspace and port.
    final class Upstream {
        let channel: any Channel
        let key: WorkspaceKey
        let port: Int
        let release: @Sendable () -> Void
        var released = false

        init(channel: any Channel, key: WorkspaceKey, port: Int, release: @escaping @Sendable () -> Void) {
            self.channel = channel
            self.key = key
            self.port = port
            self.release = release
        }

        func close() {
            channel.close(promise: nil)
            end()
        }

        /// Ends the activity that holds the workspace awake (once).
        func end() {
            guard !released else { return }
            released = true
            release()
        }
    }

    init(manager: WorkspaceManager, previewDomain: String?, logger: Logger) {
        self.manager = manager
        self.previewDomain = previewDomain
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        dropUpstream()
        self.context = nil
    }

    /// Closes the connection into the workspace, detached first: closing on this loop reports it inactive at once.
    private func dropUpstream() {
        let old = upstream
        upstream = nil
        old?.close()
    }

    func channelInactive(context: ChannelHandlerContext) {
        dropUpstream()
        exchange = nil
        context.fireChannelInactive()
    }

    // MARK: Requests from the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if closing { return }
        let part = unwrapInboundIn(data)
        if !waiting.isEmpty {
            waiting.append(part)
            return
        }
        handle(part, context: context)
    }

    /// Routes one part; a request head that must wait is queued (with everything after it).
    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let received):
            let request = Self.withoutForeignUpgrade(received)
            if let (token, target, prefix) = previewTarget(request) {
                guard routed == 0, exchange == nil else {
                    waiting.append(part)
                    return
                }
                bodyTarget = .preview
                if Self.expectsContinue(request) {
                    // In order: nothing else is being answered now. `Expect` is not sent on (see upstreamHead).
                    context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
                }
                start(Exchange(token: token, target: target, prefix: prefix, request: request), context: context)
            } else {
                guard exchange == nil else {
                    waiting.append(part)
                    return
                }
                bodyTarget = .routes
                routed += 1
                handedToRoutes = true
                context.fireChannelRead(wrapInboundOut(.head(request)))
            }
        case .body, .end:
            let ended: Bool
            if case .end = part { ended = true } else { ended = false }
            switch bodyTarget {
            case .routes:
                handedToRoutes = true
                context.fireChannelRead(wrapInboundOut(part))
            case .preview: requestPart(part)
            case .none, .discard: break
            }
            if ended { bodyTarget = .none }
        }
    }

    /// Handles what waited, as far as the connection is free for it.
    private func drain(context: ChannelHandlerContext) {
        handedToRoutes = false
        while let part = waiting.first {
            if case .head(let request) = part {
                let isPreview = previewTarget(request) != nil
                if isPreview ? (routed > 0 || exchange != nil) : exchange != nil { break }
            }
            waiting.removeFirst()
            handle(part, context: context)
        }
        // The routes' reader (NIOAsyncChannel) takes what it was handed when a read completes; these parts came
        // outside the channel's own read, so that is said here.
        if handedToRoutes { context.fireChannelReadComplete() }
        resumeReading(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if closing { return }
        if !waiting.isEmpty || connecting || upstreamIsFull {
            readHeld = true
            return
        }
        context.read()
    }

    private func resumeReading(context: ChannelHandlerContext) {
        guard readHeld, waiting.isEmpty, !connecting, !upstreamIsFull else { return }
        readHeld = false
        context.read()
    }

    /// A request body waits while the workspace's server does not take it.
    private var upstreamIsFull: Bool {
        guard exchange != nil, let upstream else { return false }
        return !upstream.channel.isWritable
    }

    // MARK: Answers from the routes

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            context.write(data, promise: promise)
            routed -= 1
            if routed == 0, !waiting.isEmpty { drain(context: context) }
            return
        }
        context.write(data, promise: promise)
    }

    // MARK: The preview exchange

    /// The token, the target inside the workspace and the prefix, when `request` is for a preview.
    func previewTarget(_ request: HTTPRequestHead) -> (token: String, target: String, prefix: String)? {
        if request.headers.contains(name: "upgrade") { return nil }
        let path = request.uri
        if let domain = previewDomain, let token = Self.hostToken(request.headers.first(name: "host"), domain: domain) {
            return (token, path, "")
        }
        guard path.hasPrefix("/preview/") else { return nil }
        let rest = path.dropFirst("/preview/".count)
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let token = String(rest[..<end])
        guard !token.isEmpty else { return nil }
        return (token, String(rest[end...]), "/preview/\(token)")
    }

    /// The token of a host-based preview request (`Host: {token}.{domain}[:port]`), or `nil`.
    static func hostToken(_ authority: String?, domain: String) -> String? {
        guard var host = authority?.lowercased() else { return nil }
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") { host = String(host[..<colon]) }
        guard host.hasSuffix("." + domain) else { return nil }
        let token = String(host.dropLast(domain.count + 1))
        let isTokenShaped = token.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        return token.isEmpty || !isTokenShaped ? nil : token
    }

    /// The head the upgrade handler sees for a connection's first request (``UpgradeRequestFilter``): a WebSocket
    /// upgrade for a host-based preview is addressed to the one route that relays preview WebSockets,
    /// `/preview/{token}{target}`. (A later request's upgrade is answered by Hummingbird with a redirect to the same
    /// URL, which the client then asks on a new connection, as its first request.)
    static func routesHead(_ request: HTTPRequestHead, previewDomain: String?) -> HTTPRequestHead {
        guard request.headers.contains(name: "upgrade"), let domain = previewDomain, let token = Self.hostToken(request.headers.first(name: "host"), domain: domain) else {
            return request
        }
        var rewritten = request
        rewritten.uri = "/preview/\(token)" + (request.uri.hasPrefix("/") ? request.uri : "/" + request.uri)
        return rewritten
    }

    /// `request` without an `Upgrade` to anything but WebSocket (h2c, TLS, ...), which this server does not speak: such
    /// a request is answered as the plain request it also is (RFC 9110 §7.8 lets a server ignore `Upgrade`), instead
    /// of holding its connection unanswered. When it said `Connection: Upgrade`, NIO's parser reads nothing more on the
    /// connection (what follows would be the new protocol), so the request also says `Connection: close`: it is
    /// answered, and then the connection closes.
    static func withoutForeignUpgrade(_ request: HTTPRequestHead) -> HTTPRequestHead {
        guard let upgrade = request.headers.first(name: "upgrade") else { return request }
        let offered = PreviewProxy.listedInConnection([upgrade])
        if offered.count == 1, offered[0] == "websocket" { return request }
        var stripped = request
        stripped.headers.remove(name: "upgrade")
        let connection = PreviewProxy.listedInConnection(request.headers["connection"])
        if connection.contains("upgrade") { stripped.headers.replaceOrAdd(name: "connection", value: "close") }
        return stripped
    }

    private func start(_ new: Exchange, context: ChannelHandlerContext) {
        var exchange = new
        if exchange.target.hasPrefix("//") { exchange.target = "/" + exchange.target.drop(while: { $0 == "/" }) }
        self.exchange = exchange
        // A token resolved before, still valid, whose workspace this connection already reaches: go straight on.
        if let cached = manager.cachedPreview(token: exchange.token), let upstream, upstream.channel.isActive,
            upstream.key == cached.key, upstream.port == cached.port
        {
            proceed(port: cached.port, context: context)
            return
        }
        dropUpstream()
        connecting = true
        let manager = manager
        let token = exchange.token
        let needsConnection = !Self.answeredHere(exchange)
        let loop = context.eventLoop
        let promise = loop.makePromise(of: Resolution.self)
        promise.completeWithTask {
            let (runtime, port) = try await manager.resolvePreview(token: token)
            guard needsConnection else { return Resolution(port: port, key: runtime.key, socket: nil, release: {}) }
            let activity = try await runtime.beginActivity()
            do {
                let socket = try await runtime.connectedSocket(port: port)
                return Resolution(port: port, key: runtime.key, socket: socket) {
                    Task { await runtime.endActivity(activity) }
                }
            } catch {
                await runtime.endActivity(activity)
                throw error
            }
        }
        promise.futureResult.assumeIsolated().whenComplete { result in
            self.resolved(result)
        }
    }

    struct Resolution: Sendable {
        var port: Int
        var key: WorkspaceKey
        var socket: CInt?
        var release: @Sendable () -> Void
    }

    /// Preflights and the bare `/preview/{token}` are answered without the workspace.
    static func answeredHere(_ exchange: Exchange) -> Bool {
        exchange.target.isEmpty || exchange.target.hasPrefix("?") || isPreflight(exchange.request)
    }

    static func isPreflight(_ request: HTTPRequestHead) -> Bool {
        request.method == .OPTIONS && request.headers.contains(name: "origin") && request.headers.contains(name: "access-control-request-method")
    }

    static func expectsContinue(_ request: HTTPRequestHead) -> Bool {
        request.headers["expect"].contains { PreviewProxy.equalsLowercase($0, "100-continue") }
    }

    private func resolved(_ result: Result<Resolution, any Error>) {
        guard let context else {
            if case .success(let resolution) = result, let socket = resolution.socket {
                Glibc.close(socket)
                resolution.release()
            }
            return
        }
        switch result {
        case .failure(let error):
            connecting = false
            fail(error, context: context)
        case .success(let resolution):
            guard let socket = resolution.socket else {
                connecting = false
                proceed(port: resolution.port, context: context)
                return
            }
            // The socket was made inside the workspace's network; it is driven on this connection's own loop.
            ClientBootstrap(group: context.eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // The head is built from validated fields (HTTPTypes), so NIO need not check every header again.
                        try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: Self.idleTimeout))
                    }
                }
                .withConnectedSocket(socket).assumeIsolated().whenComplete { result in
                    self.connecting = false
                    switch result {
                    case .success(let channel):
                        let upstream = Upstream(channel: channel, key: resolution.key, port: resolution.port, release: resolution.release)
                        guard let context = self.context else {
                            upstream.close()
                            return
                        }
                        do {
                            try channel.pipeline.syncOperations.addHandler(UpstreamHandler(proxy: self, upstream: upstream))
                        } catch {
                            upstream.close()
                            self.fail(error, context: context)
                            return
                        }
                        self.upstream = upstream
                        self.proceed(port: resolution.port, context: context)
                    case .failure(let error):
                        resolution.release()
                        if let context = self.context { self.fail(error, context: context) }
                    }
                }
        }
    }

    /// The token holds and the connection into the workspace is there (or not needed): answer or forward.
    private func proceed(port: Int, context: ChannelHandlerContext) {
        guard var exchange else { return }
        exchange.port = port
        if exchange.target.isEmpty || exchange.target.hasPrefix("?") {
            // Pages use relative URLs: the root of a preview is its directory.
            let headers: HTTPHeaders = ["location": exchange.prefix + "/" + exchange.target, "content-length": "0"]
            answer(HTTPResponseHead(version: .http1_1, status: .permanentRedirect, headers: headers), context: context)
            return
        }
        if Self.isPreflight(exchange.request) {
            let headers = HTTPHeaders(
                PreviewProxy.preflightHeaders(
                    requestedMethod: exchange.request.headers.first(name: "access-control-request-method"),
                    requestedHeaders: exchange.request.headers.first(name: "access-control-request-headers")
                ).map { ($0.name, $0.value) })
            answer(HTTPResponseHead(version: .http1_1, status: .noContent, headers: headers), context: context)
            return
        }
        guard let upstream else {
            fail(AgentBoxError(.badGateway, "the connection into the workspace is gone"), context: context)
            return
        }
        let head = Self.upstreamHead(exchange, port: port, scheme: "http")
        let pending = exchange.pending
        exchange.pending = []
        self.exchange = exchange
        upstream.channel.write(HTTPClientRequestPart.head(head), promise: nil)
        for part in pending { forward(part, to: upstream) }
        upstream.channel.flush()
        resumeReading(context: context)
    }

    /// The request head for the workspace's server: hop-by-hop headers dropped, `Host` its own, and where the
    /// client reached it in `X-Forwarded-*` (see ``PreviewProxy``).
    static func upstreamHead(_ exchange: Exchange, port: Int, scheme: String) -> HTTPRequestHead {
        let request = exchange.request
        let listed = exchange.connectionListed
        var headers = HTTPHeaders()
        headers.reserveCapacity(request.headers.count + 5)
        headers.add(name: "host", value: "localhost:\(port)")
        var cookies: [String] = []
        var length: String?
        var chunked = false
        var forwardedProto: String?
        for (name, value) in request.headers {
            if PreviewProxy.equalsLowercase(name, "content-length") {
                length = value
            } else if PreviewProxy.equalsLowercase(name, "transfer-encoding") {
                chunked = true
            } else if PreviewProxy.equalsLowercase(name, "cookie") {
                cookies.append(value)
            } else if PreviewProxy.equalsLowercase(name, "x-forwarded-proto") {
                forwardedProto = value
            } else if PreviewProxy.equalsLowercase(name, "x-forwarded-host") || PreviewProxy.equalsLowercase(name, "x-forwarded-prefix")
                // `Expect` too: the client had its `100 Continue` from here.
                || PreviewProxy.equalsLowercase(name, "expect")
                || PreviewProxy.connectionHeaders.contains(where: { PreviewProxy.equalsLowercase(name, $0) })
                || listed.contains(where: { PreviewProxy.equalsLowercase(name, $0) })
            {
                continue
            } else {
                headers.add(name: name, value: value)
            }
        }
        if !cookies.isEmpty { headers.add(name: "cookie", value: cookies.joined(separator: "; ")) }
        // The body goes on framed as NIO read it: chunked when the client said `Transfer-Encoding`, which outranks a
        // `Content-Length` beside it (RFC 9112 §6.3; NIO's parser refuses the two together anyway).
        if chunked {
            headers.add(name: "transfer-encoding", value: "chunked")
        } else if let length {
            headers.add(name: "content-length", value: length)
        }
        if let host = request.headers.first(name: "host") { headers.add(name: "x-forwarded-host", value: host) }
        headers.add(name: "x-forwarded-proto", value: forwardedProto == "https" ? "https" : scheme)
        headers.add(name: "x-forwarded-prefix", value: exchange.prefix)
        return HTTPRequestHead(version: .http1_1, method: request.method, uri: exchange.target, headers: headers)
    }

    /// A part of the request's body (or its end).
    private func requestPart(_ part: HTTPServerRequestPart) {
        guard var exchange else { return }
        if case .end = part { exchange.requestEnded = true }
        if let upstream, !connecting, exchange.port != 0 {
            self.exchange = exchange
            forward(part, to: upstream)
            upstream.channel.flush()
        } else {
            exchange.pending.append(part)
            self.exchange = exchange
        }
    }

    private func forward(_ part: HTTPServerRequestPart, to upstream: Upstream) {
        switch part {
        case .head: break
        case .body(let buffer):
            exchange?.bodySent = true
            upstream.channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
        case .end: upstream.channel.write(HTTPClientRequestPart.end(nil), promise: nil)
        }
    }

    /// An answer given here, without the workspace's server.
    private func answer(_ response: HTTPResponseHead, context: ChannelHandlerContext) {
        var response = response
        if exchange?.closeAfter == true { response.headers.replaceOrAdd(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        writeEnd(context: context)
        finishExchange(context: context)
    }

    /// The exchange failed before its answer began: a problem+json answer; after: the connection closes.
    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        guard let exchange else { return }
        if exchange.responseStarted {
            self.exchange = nil
            dropUpstream()
            context.close(promise: nil)
            return
        }
        let (head, body) = ProblemError.from(error, logger: logger).http1Answer(adding: exchange.closeAfter ? ["connection": "close"] : [:])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        writeEnd(context: context)
        if !exchange.requestEnded, bodyTarget == .preview { bodyTarget = .discard }
        dropUpstream()
        finishExchange(context: context)
    }

    /// Ends the answer. After the client's `Connection: close` nothing more is read, and the connection closes once
    /// the answer is written (closing at once would drop what the socket had not taken yet).
    private func writeEnd(context: ChannelHandlerContext) {
        guard exchange?.closeAfter == true else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        closing = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    private func finishExchange(context: ChannelHandlerContext) {
        exchange = nil
        if closing {
            // As the routes do for `Connection: close`: what was pipelined after it is not answered.
            waiting.removeAll()
            dropUpstream()
            return
        }
        drain(context: context)
    }

    // MARK: Answers from the workspace

    fileprivate func upstreamRead(_ part: HTTPClientResponsePart, from source: Upstream) {
        guard let context, source === upstream, var exchange else { return }
        switch part {
        case .head(let head):
            if head.status.code < 200 {
                // Informational answers are not relayed (`100 Continue` was given here already).
                return
            }
            var headers = PreviewProxy.responseHeaders(head.headers, port: exchange.port, prefix: exchange.prefix)
            if exchange.closeAfter { headers.add(name: "connection", value: "close") }
            exchange.responseStarted = true
            self.exchange = exchange
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: head.status, headers: headers))), promise: nil)
        case .body(let buffer):
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end:
            writeEnd(context: context)
            if !exchange.requestEnded, bodyTarget == .preview { bodyTarget = .discard }
            finishExchange(context: context)
        }
    }

    fileprivate func isExchanging(on source: Upstream) -> Bool { source === upstream && exchange != nil }

    fileprivate func upstreamReadComplete() {
        context?.flush()
    }

    fileprivate func upstreamInactive(_ source: Upstream) {
        source.end()
        guard source === upstream else { return }
        upstream = nil
        guard let context, var exchange, !connecting else { return }
        // A kept-alive connection the workspace's server had closed (its idle timeout, or the workspace slept) as the
        // request went out: sent once more on a new connection, when nothing of it can have been taken.
        if !exchange.responseStarted, !exchange.bodySent, !exchange.retried, exchange.requestEnded {
            exchange.retried = true
            exchange.pending = [.end(nil)]
            self.exchange = nil
            start(exchange, context: context)
            return
        }
        fail(AgentBoxError(.badGateway, "the workspace's server closed the connection before it answered"), context: context)
    }

    fileprivate func upstreamWritabilityChanged() {
        guard let context else { return }
        resumeReading(context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The client reads slowly: stop reading the workspace's answer until it catches up.
        if let upstream, upstream.channel.isActive {
            upstream.channel.setOption(.autoRead, value: context.channel.isWritable).whenComplete { _ in }
        }
        context.fireChannelWritabilityChanged()
    }
}

/// The workspace side of a preview connection: hands answers to the client's handler (same event loop).
private final class UpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    let proxy: PreviewProxyHandler
    let upstream: PreviewProxyHandler.Upstream

    init(proxy: PreviewProxyHandler, upstream: PreviewProxyHandler.Upstream) {
        self.proxy = proxy
        self.upstream = upstream
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        proxy.upstreamRead(unwrapInboundIn(data), from: upstream)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        proxy.upstreamReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        proxy.upstreamInactive(upstream)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        proxy.upstreamWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Unused for a while: closed, which lets the workspace sleep. A slow answer in progress is not cut.
        if event is IdleStateHandler.IdleStateEvent, !proxy.isExchanging(on: upstream) { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Puts a ``PreviewProxyHandler`` just before Hummingbird's conversion of NIO's HTTP/1 parts into HTTPTypes, then
/// leaves the pipeline. Hummingbird adds its extra handlers after that conversion; the proxy works on the parts as
/// NIO parsed them, so that a proxied request is not converted to HTTPTypes and back on either side.
final class PreviewProxyInstaller: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart

    let proxy: PreviewProxyHandler

    init(_ proxy: PreviewProxyHandler) { self.proxy = proxy }

    func handlerAdded(context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        do {
            let codec = try pipeline.context(handlerType: HTTP1ToHTTPServerCodec.self)
            try pipeline.addHandler(proxy, position: .before(codec.handler))
        } catch {
            proxy.logger.error("cannot install the preview proxy", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
        pipeline.removeHandler(context: context, promise: nil)
    }
}
