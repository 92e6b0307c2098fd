import HTTPTypes
import NIOCore
import NIOHTTP1

/// Closes an HTTP/1 connection whose client keeps the server waiting: a request head not complete within
/// `headTimeout` of the connection's start or of the last answer's end (this is also how long an idle keep-alive
/// connection stays open), or a request body with no bytes for `bodyTimeout`. A slow client (slowloris: a head sent
/// a byte at a time, a `Content-Length` never reached) otherwise held its connection, and a request's task, forever.
///
/// It never cuts what the server owes: while an answer is being made (a long exec, an event stream) no clock runs.
/// It sits right after NIO's HTTP/1 parser, so it sees every request part and every answer part of the connection,
/// API and preview alike. From an answer that is a `101` on, the connection is no longer HTTP (WebSocket frames, a
/// preview's relayed bytes): it lets everything through untouched, with no clock (it does not leave the pipeline
/// then, which would disturb NIO's upgrade under way). It also answers a CONNECT itself (405, then closes): NIO's parser
/// takes the bytes after one for a tunnel, so no route can.
final class ClientTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let headTimeout: TimeAmount
    let bodyTimeout: TimeAmount

    /// Requests whose head has come and whose answer has not ended.
    private var unanswered = 0
    /// A request's body is still coming.
    private var receivingBody = false
    /// When the client's time is up; `nil` while no clock runs (the server owes an answer).
    private var deadline: NIODeadline?
    /// The one check scheduled, and when it is due. Moving the deadline later schedules nothing: the check, when it
    /// comes, finds the new deadline and schedules itself for it. So a keep-alive request or a body part costs a
    /// clock read, not a timer scheduled and cancelled (at most one check per timeout period runs).
    private var check: Scheduled<Void>?
    private var checkDue: NIODeadline?
    /// A `101` was sent: nothing here is HTTP any more.
    private var upgraded = false
    /// A request was refused here (a CONNECT, a head ``framingProblem(_:)`` finds): the connection is closing, and
    /// nothing more of it is read.
    private var refused = false
    /// The refusal's answer, while answers to requests before it are still owed.
    private var refusal: ProblemError?

    init(headTimeout: Duration, bodyTimeout: Duration) {
        self.headTimeout = TimeAmount(headTimeout)
        self.bodyTimeout = TimeAmount(bodyTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(headTimeout, context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { stop() }

    func channelActive(context: ChannelHandlerContext) {
        arm(headTimeout, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if upgraded { return context.fireChannelRead(data) }
        if refused { return }
        switch unwrapInboundIn(data) {
        case .head(let head) where head.method == .CONNECT:
            // NIO's parser takes what follows a CONNECT for a tunnel, so no route could answer it in HTTP: answered
            // here, and the connection closed (it hung, unanswered, until this handler's timeout).
            refuse(ProblemError(.methodNotAllowed, "CONNECT is not served here: AgentBox is not a proxy (a workspace's egress proxy is inside it)"), context: context)
            return
        case .head(var head):
            if let problem = Self.framingProblem(head.headers) {
                // Refused before any route or preview sees it, and the connection closes: where its body ends, or whom
                // it is for, can no longer be trusted.
                refuse(problem, context: context)
                return
            }
            unanswered += 1
            receivingBody = true
            arm(bodyTimeout, context: context)
            // The preview proxy's own marker of a WebSocket upgrade (``UpgradeRequestFilter`` sets it after this
            // handler) is never the client's: a client that sends it without `Upgrade` has NIO's parser read on past
            // its head, so what it sends next would be parsed as requests, not relayed.
            if head.headers.contains(name: PreviewRequestHead.webSocketMarker) {
                head.headers.remove(name: PreviewRequestHead.webSocketMarker)
                return context.fireChannelRead(wrapInboundOut(.head(head)))
            }
        case .body:
            if receivingBody { arm(bodyTimeout, context: context) }
        case .end:
            receivingBody = false
            // The server owes an answer now (or has given it already, ahead of the body's end).
            if unanswered > 0 { disarm() } else { arm(headTimeout, context: context) }
        }
        context.fireChannelRead(data)
    }

    /// A request NIO's parser refuses is answered 400 here, after the answers owed to the requests before it (as any
    /// refusal): the routes' own answer to it went out at once, ahead of a preview's answer still owed (a client took
    /// it for its first request's) or into the middle of a preview's streamed body.
    ///
    /// An error in the body of the request being read is that request's: it goes on to whoever reads the body (the
    /// route answers it), as before.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // After a refusal every error is its echo (the decoder, left in its error state, says so for every later read):
        // passed on, one would end the connection and cut the answer still owed.
        if refused, !upgraded { return }
        guard error is HTTPParserError, !upgraded, !receivingBody else { return context.fireErrorCaught(error) }
        refuse(ProblemError(.badRequest, "the request is not valid HTTP/1.1 (\(error))"), context: context)
    }

    /// Once a request is refused, nothing more is read: the client cannot keep the server parsing (and dropping) what
    /// it streams while the answers owed before the refusal are written.
    func read(context: ChannelHandlerContext) {
        if refused { return }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if upgraded { return context.write(data, promise: promise) }
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status == .switchingProtocols:
            upgraded = true
            // The connection is no longer HTTP: nothing of it is refused any more (its reads are the relay's).
            refused = false
            refusal = nil
            stop()
            context.write(data, promise: promise)
        case .end:
            unanswered = max(0, unanswered - 1)
            if unanswered == 0, let refusal {
                // The requests before the refused one are answered: now its answer, and the connection closes.
                self.refusal = nil
                context.write(data, promise: promise)
                refusal.answerAndClose(context)
                return
            }
            if unanswered == 0, !refused {
                // The client's turn: the next head, or more of a body the answer came ahead of.
                arm(receivingBody ? bodyTimeout : headTimeout, context: context)
            }
            context.write(data, promise: promise)
        case .head, .body:
            context.write(data, promise: promise)
        }
    }

    /// Answers `problem` and closes the connection, reading nothing more of it; after the answers still owed to the
    /// requests before it (pipelined), so that no client takes it for one of theirs.
    private func refuse(_ problem: ProblemError, context: ChannelHandlerContext) {
        refused = true
        stop()
        if unanswered > 0 {
            refusal = problem
        } else {
            problem.answerAndClose(context)
        }
    }

    /// What makes a request head unsafe to take, in one pass over its headers (this runs for every request):
    /// - a transfer coding other than `chunked`. NIO's parser reads a body whose last coding is chunked as chunked
    ///   and hands on what the other codings left (gzip's bytes, say) as if they were the body: a file upload would
    ///   store them, a preview forward them without the header that says what they are. RFC 9112 §6.1: a coding the
    ///   server does not understand is a 501.
    /// - two `Host` headers (RFC 9112 §3.2: a 400): the first would pick the preview and the second might be what a
    ///   server behind it reads.
    static func framingProblem(_ headers: HTTPHeaders) -> ProblemError? {
        var hosts = 0
        var chunkedCodings = 0
        for (name, value) in headers {
            switch name.utf8.count {
            case 4 where PreviewProxy.equalsLowercase(name, "host"):
                hosts += 1
                if hosts > 1 { return ProblemError(.badRequest, "a request has one Host header, not several") }
            case 17 where PreviewProxy.equalsLowercase(name, "transfer-encoding"):
                // The same comma list, trimmed and lowercased, as `Connection`'s.
                let codings = PreviewProxy.listedInConnection([value])
                if let coding = codings.first(where: { $0 != "chunked" }) {
                    return ProblemError(.notImplemented, "the transfer coding '\(coding.prefix(64))' is not supported: send the body as it is, or chunked")
                }
                // `chunked, chunked` (or two headers saying chunked): NIO takes one off and would hand on the inner
                // chunk framing as the body.
                chunkedCodings += codings.count
                if chunkedCodings > 1 { return ProblemError(.badRequest, "a body is chunked once: 'chunked' is given more than once") }
            default: continue
            }
        }
        return nil
    }

    private func arm(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        let due = NIODeadline.now() + timeout
        deadline = due
        // A check already due by then finds the deadline moved and comes back for it; a later one is too late.
        if let checkDue, checkDue <= due { return }
        schedule(at: due, context: context)
    }

    private func schedule(at due: NIODeadline, context: ChannelHandlerContext) {
        check?.cancel()
        checkDue = due
        check = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) { [weak self] in
            guard let self else { return }
            self.check = nil
            self.checkDue = nil
            guard let deadline = self.deadline else { return }  // no clock runs: the next arm schedules again
            if deadline > NIODeadline.now() {
                self.schedule(at: deadline, context: context)
            } else {
                self.deadline = nil
                context.close(promise: nil)
            }
        }
    }

    private func disarm() {
        deadline = nil
    }

    /// Cancels the check (the connection or this handler is gone).
    private func stop() {
        deadline = nil
        check?.cancel()
        check = nil
        checkDue = nil
    }
}
