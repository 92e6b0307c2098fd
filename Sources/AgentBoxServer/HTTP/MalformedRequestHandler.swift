import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// A child channel as `Inner` sets it up, plus a ``MalformedRequestHandler`` at the end of its pipeline, and right
/// after its HTTP/1 parser a ``ClientTimeoutHandler`` and an ``UpgradeRequestFilter``.
struct GuardedChildChannel<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let previewDomain: String?
    /// The preview proxy relays previews' WebSockets itself (a server that is not in a cluster).
    var relaysWebSockets = false
    /// How long a client may keep the server waiting for a request head, and for more of a body (``ClientTimeoutHandler``).
    var clientTimeouts: (head: Duration, body: Duration) = (.seconds(60), .seconds(60))

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandler(MalformedRequestHandler(logger: logger))
            let decoder = try channel.pipeline.syncOperations.context(handlerType: ByteToMessageHandler<HTTPRequestDecoder>.self)
            let filter = UpgradeRequestFilter(previewDomain: previewDomain, relaysWebSockets: relaysWebSockets)
            try channel.pipeline.syncOperations.addHandler(filter, position: .after(decoder.handler))
            try channel.pipeline.syncOperations.addHandler(
                ClientTimeoutHandler(headTimeout: clientTimeouts.head, bodyTimeout: clientTimeouts.body), position: .after(decoder.handler))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: Logger(label: logger.label) { _ in UpgradeNoiseFilter(inner: logger.handler) })
    }
}

/// Passes log events on, except HummingbirdWebSocket's "Error handling upgrade result", which becomes a debug one: it
/// comes for every connection whose first request was not HTTP (``MalformedRequestHandler`` answered it 400), so any
/// client could fill the server's log with error lines, one per connection.
struct UpgradeNoiseFilter: LogHandler {
    var inner: any LogHandler

    func log(event: LogEvent) {
        guard event.level == .error, event.message.description == "Error handling upgrade result" else { return inner.log(event: event) }
        guard inner.logLevel <= .debug else { return }
        var demoted = event
        demoted.level = .debug
        inner.log(event: demoted)
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }
}

/// Answers a malformed *first* request of a connection with a 400 problem and closes the connection.
///
/// Until the first request head has been read, the connection's pipeline holds only NIO's HTTP/1 parser and the
/// WebSocket upgrade check, which decides what comes next; Hummingbird answers a malformed request only once its
/// HTTP handlers are there, so a connection whose first request did not parse was left open with no answer. Once a
/// request head has been read, this handler leaves the pipeline and Hummingbird's own handling applies.
final class MalformedRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundOut = HTTPServerResponsePart

    let logger: Logger
    private var answered = false

    init(logger: Logger) { self.logger = logger }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError, !answered else {
            context.fireErrorCaught(error)
            return
        }
        answered = true
        logger.debug("malformed first request", metadata: ["error": "\(error)"])
        ProblemError(.badRequest, "the request is not valid HTTP/1.1 (\(error))").answerAndClose(context)
    }
}

/// Prepares the *first* request of a connection for NIO's upgrade handler, which only ever sees that one:
/// - drops an `Upgrade` to anything but WebSocket (h2c, TLS, ...): finding no upgrader for it, that handler left the
///   request unanswered and its connection held. Such a request is answered as the plain request it also is
///   (RFC 9110 §7.8 lets a server ignore `Upgrade`);
/// - addresses a WebSocket upgrade for a host-based preview (`Host: {token}.{domain}`) to `/preview/{token}{path}`,
///   the one route that relays preview WebSockets: a preview host selects a preview by its token, whatever the path,
///   and never reaches an API route (nor lifts its authentication).
/// - with `relaysWebSockets` (no cluster), hides a WebSocket upgrade for a preview from NIO's upgrade handler:
///   `Upgrade` is replaced by ``PreviewRequestHead/webSocketMarker``, so that the request goes on as a plain one to
///   ``PreviewProxyHandler``, which relays it to the workspace's server and, after its `101`, the connection's bytes.
/// ``PreviewProxyHandler`` drops foreign upgrades of later requests the same way. Leaves the pipeline after the first
/// head, before an upgrade replaces HTTP.
final class UpgradeRequestFilter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    let previewDomain: String?
    let relaysWebSockets: Bool

    init(previewDomain: String?, relaysWebSockets: Bool = false) {
        self.previewDomain = previewDomain
        self.relaysWebSockets = relaysWebSockets
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else {
            context.fireChannelRead(data)
            return
        }
        var request = PreviewRequestHead.withoutForeignUpgrade(head)
        if relaysWebSockets, request.headers.contains(name: "upgrade"), PreviewRequestHead.isWebSocketUpgrade(request),
            PreviewRequestHead.target(of: request, previewDomain: previewDomain, webSockets: true) != nil
        {
            request.headers.remove(name: "upgrade")
            request.headers.replaceOrAdd(name: PreviewRequestHead.webSocketMarker, value: "websocket")
        } else {
            request = PreviewRequestHead.routesHead(request, previewDomain: previewDomain)
        }
        context.fireChannelRead(wrapInboundOut(.head(request)))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
