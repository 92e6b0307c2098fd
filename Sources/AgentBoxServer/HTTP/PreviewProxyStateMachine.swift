import AgentBox
import NIOCore
import NIOHTTP1

/// The preview proxy's decisions for one client connection, as a value. ``PreviewProxyHandler`` tells it what
/// happened (a request part arrived, an answer from the routes ended, a token was resolved, the workspace's server
/// answered or closed, the pipeline asked to read, ...) and performs the ``Action`` that each event returns. It holds
/// no channel and does no I/O, so every transition can be tested alone.
///
/// One request is answered at a time, in order, by whichever side it is for, and the connection's ``Turn`` says whose
/// answer is in progress:
///
/// ```
/// free ──route head──▶ routes(1) ──route head──▶ routes(n + 1) ──the last of their answers ends──▶ free
/// free ──preview head──▶ preview(exchange) ──its answer ends──▶ free
///                        (the exchange: resolving ──▶ sent ──▶ answering, see PreviewExchange.Phase)
/// preview ──its answer ends after `Connection: close`, or breaks off after its head──▶ closing
/// any turn ──the client's connection is gone──▶ closed (the state: nothing more happens)
/// ```
///
/// A preview head waits unless the turn is free; a route head waits during a preview's turn; nothing is read while
/// closing.
///
/// A head that cannot be answered now waits in ``Open/waiting`` with everything read after it, and reading pauses
/// (a `read` from the pipeline is held) until the answer in progress ends; the waiting parts are then handed on
/// (``nextWaitingPart()``) and reading resumes (``resumeReading()``). Reading also pauses while a token is resolved
/// and while the workspace's server does not take the request's body. So the buffers hold at most what one read of
/// the socket brought.
struct PreviewProxyStateMachine {
    /// Names a connection into a workspace; ``PreviewProxyHandler`` numbers the ones it opens.
    struct UpstreamID: Hashable, Sendable {
        var rawValue: UInt64
    }

    /// The connection into a workspace that requests of this client connection go to (kept alive between them).
    struct UpstreamLink: Hashable, Sendable {
        var id: UpstreamID
        /// `false` while the connection holds more than its high-water mark of unsent bytes: the request's body waits.
        var isWritable: Bool
    }

    enum State {
        /// Requests are read and answered.
        case open(Open)
        /// The client's connection is gone (or the handler left the pipeline): every event is ignored, and a connection
        /// into a workspace that arrives now is closed.
        case closed
        /// Only while a transition runs, so that the buffers of ``Open`` stay uniquely referenced and change in place.
        case modifying
    }

    /// Whose answer is in progress on the client's connection.
    enum Turn {
        /// None: the next request head, of either kind, goes on at once.
        case free
        /// `count` (≥ 1) requests went to the routes and their answers have not all ended. More route requests go on
        /// (the routes answer them in order); a preview request waits.
        case routes(count: Int)
        /// A preview request is being answered; every request head waits.
        case preview(PreviewExchange)
        /// The last answer (to a `Connection: close` request, or one that broke off) is being written, and then the
        /// connection closes: nothing more is read or answered.
        case closing
    }

    /// Where the body of the request being read goes.
    enum RequestBody: Equatable {
        /// Between requests.
        case none
        /// The current request is the routes'.
        case routes
        /// The current request is the exchange's (only while ``Turn/preview(_:)``: the request has not ended).
        case exchange
        /// The exchange was answered before its request ended: the rest of the request is dropped.
        case discard
    }

    /// The state of a connection that reads and answers requests.
    struct Open {
        /// `serve --preview-domain`: `{token}.{domain}` are preview hosts.
        let previewDomain: String?
        /// `serve --token`: a client's `Authorization` that carries it is not sent into the workspace.
        var serverToken: String? = nil
        /// The client's address, added to `X-Forwarded-For` for the workspace's server.
        var clientAddress: String? = nil
        /// WebSocket upgrades for previews are exchanges too (a server that is not in a cluster); otherwise the preview
        /// route relays them.
        var relaysWebSockets = false
        var turn = Turn.free
        var body = RequestBody.none
        /// Set while no token is being resolved (a resolution either hands the connection back or replaces it).
        var upstream: UpstreamLink?
        /// Parts of requests that wait for the answer in progress, in the order they came.
        var waiting = CircularBuffer<HTTPServerRequestPart>()
        /// The pipeline asked to read while reading was paused.
        var readHeld = false
    }

    /// What ``PreviewProxyHandler`` does after an event.
    enum Action {
        /// Nothing (the part waits or is dropped, or the event changed nothing).
        case none
        /// Hand the part on to the routes (a head as ``PreviewRequestHead/withoutForeignUpgrade(_:)`` made it).
        case forwardToRoutes(HTTPServerRequestPart)
        /// A preview request starts (or starts again): find where its token leads, then report ``resolved(port:upstream:)``
        /// or ``resolutionFailed(_:)``.
        case resolve(Resolution)
        /// Send the request's head, then the parts that came while its token was resolved, to the workspace's server;
        /// flush; then ask ``resumeReading()``.
        case sendRequest(HTTPRequestHead, pending: [HTTPServerRequestPart])
        /// Send a part of the request's body (or its end) to the workspace's server, and flush.
        case forwardToUpstream(HTTPServerRequestPart)
        /// Write the answer's head to the client (flushed when the workspace's server's read completes).
        case writeResponseHead(HTTPResponseHead)
        /// Write a part of the answer's body to the client.
        case writeResponseBody(ByteBuffer)
        /// Write the end of the answer the workspace's server gave, then as ``AnswerEnd`` says.
        case endResponse(AnswerEnd)
        /// Write a whole answer given here, then as ``AnswerEnd`` says.
        case answer(LocalAnswer, AnswerEnd)
        /// The routes' answer ended and requests wait: hand them on (``nextWaitingPart()`` until `nil`), then fire a
        /// read-complete if parts went to the routes, then ask ``resumeReading()``.
        case drain
        /// Close that connection into a workspace.
        case closeUpstream(UpstreamID)
        /// An answer broke off after its head: close the client's connection (and that connection into a workspace).
        case closeConnection(upstream: UpstreamID?)
        /// The workspace's server took a WebSocket upgrade on connection `upstream`: write this `101` head to the client,
        /// then relay the bytes of both connections to each other (``PreviewByteRelay``). Nothing more is read or
        /// answered here; that connection into the workspace is no longer this machine's.
        case relayWebSocket(HTTPResponseHead, upstream: UpstreamID)
    }

    /// Where to look for a preview request's token.
    struct Resolution: Equatable {
        var token: String
        /// The workspace's server is needed: a connection into the workspace is made (or the open one reused). A
        /// preflight or the bare `/preview/{token}` only needs the token checked.
        var connects: Bool
        /// The open connection into a workspace, to reuse (without asking the store or the workspace) when the token,
        /// still valid in the cache, leads to the same workspace and port; otherwise it is closed.
        var reusable: UpstreamID?
        /// Answer `100 Continue` first (the client asked; in order: nothing else is being answered now).
        var sendsContinue: Bool
    }

    /// An answer given by the proxy itself.
    enum LocalAnswer {
        /// A redirect or a preflight's answer: a head with no body.
        case head(HTTPResponseHead)
        /// The problem+json answer for `error` (an unknown token 404, a workspace's server that is not there 502, ...).
        case problem(any Error)
    }

    /// What follows the end of an answer to a preview request.
    struct AnswerEnd: Equatable {
        /// The client said `Connection: close`: close the connection once the answer is written (closing at once would
        /// drop what the socket had not taken yet). Otherwise hand on what waited, as for ``Action/drain``.
        var closesConnection: Bool
        /// Close this connection into a workspace (after a failure, or with the client's connection).
        var closeUpstream: UpstreamID?
    }

    private var state: State

    init(previewDomain: String?, relaysWebSockets: Bool = false, serverToken: String? = nil) {
        state = .open(Open(previewDomain: previewDomain, serverToken: serverToken, relaysWebSockets: relaysWebSockets))
    }

    /// Runs `transition` on the open state in place; `closed` when the connection is gone.
    private mutating func withOpen<Value>(closed: Value, _ transition: (inout Open) -> Value) -> Value {
        guard case .open(var open) = state else { return closed }
        state = .modifying
        defer { state = .open(open) }
        return transition(&open)
    }

    // MARK: Events from the client's side

    /// NIO's parser refused the body of the request being read; `nil` when that request is not a preview exchange
    /// (the routes answer their own). The exchange fails: a 400 before its answer began (and the connection closes,
    /// since where the request ends is unknown), else the connection closes.
    mutating func requestBodyFailed(_ error: any Error) -> Action? {
        withOpen(closed: nil) { open in
            guard case .preview(let exchange) = open.turn, open.body == .exchange else { return nil }
            exchange.closesConnection = true
            return open.failExchange(AgentBoxError(.invalidArgument, "the request's body is not valid HTTP/1.1 (\(error))"))
        }
    }

    /// The client's address (the connection's peer), once it is known.
    mutating func clientConnected(from address: String?) {
        withOpen(closed: ()) { $0.clientAddress = address }
    }

    /// A request part arrived from the client.
    mutating func requestPartReceived(_ part: HTTPServerRequestPart) -> Action {
        withOpen(closed: .none) { $0.received(part) }
    }

    /// The pipeline asks to read; `true`: pass the read on (otherwise it is held until ``resumeReading()``, or dropped
    /// when the connection is closing).
    mutating func readRequested() -> Bool {
        withOpen(closed: false) { $0.readRequested() }
    }

    /// After a ``Action/drain``, ``Action/sendRequest(_:pending:)`` or a change of the upstream's writability: `true`
    /// when a held read should now be passed on.
    mutating func resumeReading() -> Bool {
        withOpen(closed: false) { $0.resumeReading() }
    }

    /// The routes wrote the end of an answer.
    mutating func routeAnswerEnded() -> Action {
        withOpen(closed: .none) { $0.routeAnswerEnded() }
    }

    /// The next waiting part that can be handled now, with what to do with it; `nil` when none can.
    mutating func nextWaitingPart() -> Action? {
        withOpen(closed: nil) { $0.nextWaitingPart() }
    }

    /// The client's connection is gone (or the handler left the pipeline).
    mutating func channelInactive() -> Action {
        guard case .open(let open) = state else { return .none }
        state = .closed
        return open.upstream.map { .closeUpstream($0.id) } ?? .none
    }

    // MARK: Events from the resolution of a token

    /// The token leads to `port`; `upstream` is the connection into the workspace to send the request on (the open one
    /// reused, or a new one), or `nil` when none was asked for.
    mutating func resolved(port: Int, upstream: UpstreamLink?) -> Action {
        guard case .open = state else { return upstream.map { .closeUpstream($0.id) } ?? .none }
        return withOpen(closed: .none) { $0.resolved(port: port, upstream: upstream) }
    }

    /// The token is unknown, expired or revoked, or the workspace or its port could not be reached.
    mutating func resolutionFailed(_ error: any Error, continueSent: Bool = false) -> Action {
        withOpen(closed: .none) { $0.resolutionFailed(error, continueSent: continueSent) }
    }

    // MARK: Events from a connection into a workspace

    /// A part of an answer from the workspace's server on connection `id`.
    mutating func upstreamResponsePart(_ part: HTTPClientResponsePart, from id: UpstreamID) -> Action {
        withOpen(closed: .none) { $0.upstreamResponsePart(part, from: id) }
    }

    /// Connection `id` into a workspace closed (its server closed it, it failed, or it went idle).
    mutating func upstreamInactive(_ id: UpstreamID) -> Action {
        withOpen(closed: .none) { $0.upstreamInactive(id) }
    }

    /// Connection `id` can take more, or no more; `true` when a held read should now be passed on.
    mutating func upstreamWritabilityChanged(_ id: UpstreamID, isWritable: Bool) -> Bool {
        withOpen(closed: false) { open in
            if open.upstream?.id == id { open.upstream?.isWritable = isWritable }
            return open.resumeReading()
        }
    }

    /// Connection `id` has been unused for its idle timeout: `true` to close it, which lets the workspace sleep. A slow
    /// answer in progress on it is not cut.
    func upstreamIdle(_ id: UpstreamID) -> Bool {
        guard case .open(let open) = state, open.upstream?.id == id, case .preview = open.turn else { return true }
        return false
    }
}

// MARK: - Transitions

extension PreviewProxyStateMachine.Open {
    typealias Action = PreviewProxyStateMachine.Action

    mutating func received(_ part: HTTPServerRequestPart) -> Action {
        if case .closing = turn { return .none }
        if !waiting.isEmpty {
            waiting.append(part)
            return .none
        }
        return handle(part)
    }

    /// Routes one part that is not behind a waiting head; a request head that must wait is queued.
    private mutating func handle(_ part: HTTPServerRequestPart) -> Action {
        switch part {
        case .head(let received):
            let request = PreviewRequestHead.withoutForeignUpgrade(received)
            if let address = PreviewRequestHead.target(of: request, previewDomain: previewDomain, webSockets: relaysWebSockets) {
                guard case .free = turn else {
                    waiting.append(part)
                    return .none
                }
                let exchange = PreviewExchange(
                    address, request: request, isWebSocket: relaysWebSockets && PreviewRequestHead.isWebSocketUpgrade(request))
                turn = .preview(exchange)
                body = .exchange
                let reusable = upstream?.id
                upstream = nil
                return .resolve(
                    .init(token: exchange.token, connects: !exchange.isAnsweredHere, reusable: reusable, sendsContinue: PreviewRequestHead.expectsContinue(request)))
            }
            switch turn {
            case .free: turn = .routes(count: 1)
            case .routes(let count): turn = .routes(count: count + 1)
            case .preview, .closing:
                waiting.append(part)
                return .none
            }
            body = .routes
            return .forwardToRoutes(.head(request))
        case .body, .end:
            let destination = body
            if case .end = part { body = .none }
            switch destination {
            case .routes: return .forwardToRoutes(part)
            case .exchange: return exchangeReceived(part)
            case .none, .discard: return .none
            }
        }
    }

    /// A part of the exchange's request body, or its end.
    private mutating func exchangeReceived(_ part: HTTPServerRequestPart) -> Action {
        guard case .preview(let exchange) = turn else { return .none }
        switch exchange.phase {
        case .resolving(var pending):
            pending.append(part)
            exchange.phase = .resolving(pending: pending)
            turn = .preview(exchange)
            return .none
        case .sent(let port, let bodySent):
            if !bodySent, case .body = part {
                exchange.phase = .sent(port: port, bodySent: true)
                turn = .preview(exchange)
            }
            return .forwardToUpstream(part)
        case .answering:
            return .forwardToUpstream(part)
        }
    }

    /// Whether a waiting request head must go on waiting.
    private func mustWait(_ head: HTTPRequestHead) -> Bool {
        let isPreview =
            PreviewRequestHead.target(of: PreviewRequestHead.withoutForeignUpgrade(head), previewDomain: previewDomain, webSockets: relaysWebSockets) != nil
        switch turn {
        case .free: return false
        case .routes: return isPreview
        case .preview, .closing: return true
        }
    }

    mutating func nextWaitingPart() -> Action? {
        guard let part = waiting.first else { return nil }
        if case .head(let head) = part, mustWait(head) { return nil }
        waiting.removeFirst()
        return handle(part)
    }

    /// Reading pauses while requests wait, while a token is resolved, and while the workspace's server does not take
    /// the request's body.
    private var isPaused: Bool {
        if !waiting.isEmpty { return true }
        guard case .preview(let exchange) = turn else { return false }
        if case .resolving = exchange.phase { return true }
        if let upstream, !upstream.isWritable { return true }
        return false
    }

    mutating func readRequested() -> Bool {
        if case .closing = turn { return false }
        if isPaused {
            readHeld = true
            return false
        }
        return true
    }

    mutating func resumeReading() -> Bool {
        guard readHeld, !isPaused else { return false }
        if case .closing = turn { return false }
        readHeld = false
        return true
    }

    mutating func routeAnswerEnded() -> Action {
        guard case .routes(let count) = turn else { return .none }
        if count > 1 {
            turn = .routes(count: count - 1)
            return .none
        }
        turn = .free
        return waiting.isEmpty ? .none : .drain
    }

    mutating func resolved(port: Int, upstream link: PreviewProxyStateMachine.UpstreamLink?) -> Action {
        guard case .preview(let exchange) = turn, case .resolving(let pending) = exchange.phase else {
            // Only an exchange resolves; this cannot be, but a connection nobody will use must not stay open.
            return link.map { .closeUpstream($0.id) } ?? .none
        }
        upstream = link
        if let head = exchange.localAnswer {
            return .answer(.head(head), finishExchange(exchange, closingUpstream: nil))
        }
        guard link != nil else {
            return fail(AgentBoxError(.badGateway, "the connection into the workspace is gone"))
        }
        let bodySent = pending.contains { if case .body = $0 { true } else { false } }
        exchange.phase = .sent(port: port, bodySent: bodySent)
        turn = .preview(exchange)
        return .sendRequest(exchange.upstreamHead(port: port, serverToken: serverToken, clientAddress: clientAddress), pending: pending)
    }

    mutating func resolutionFailed(_ error: any Error, continueSent: Bool) -> Action {
        guard case .preview(let exchange) = turn, case .resolving = exchange.phase else { return .none }
        if body == .exchange, !continueSent, PreviewRequestHead.expectsContinue(exchange.request) {
            // No `100 Continue` was given: the client may send its body or not, so where its next request starts is
            // unknown. The answer says `Connection: close`, and the connection closes after it (RFC 9110 §10.1.1).
            exchange.closesConnection = true
        }
        return fail(error)
    }

    mutating func upstreamResponsePart(_ part: HTTPClientResponsePart, from id: PreviewProxyStateMachine.UpstreamID) -> Action {
        guard upstream?.id == id, case .preview(let exchange) = turn else { return .none }
        switch part {
        case .head(let head):
            if head.status == .switchingProtocols, exchange.isWebSocket, case .sent(let port, _) = exchange.phase, let id = upstream?.id {
                // The WebSocket is the connection's from now on: nothing more is read as HTTP, nor answered.
                turn = .closing
                body = .discard
                waiting.removeAll()
                upstream = nil
                return .relayWebSocket(exchange.responseHead(head, port: port), upstream: id)
            }
            // A switch of protocols nobody asked for: what follows on that connection is not HTTP any more, and this
            // request has no answer. A 502, and the connection into the workspace goes (nothing more is read from it:
            // bytes after the `101` would have been taken for the next request's answer).
            if head.status == .switchingProtocols {
                return fail(AgentBoxError(.badGateway, "the workspace's server switched protocols (101) for a request that asked for no upgrade"))
            }
            // Informational answers are not relayed (`100 Continue` was given here already).
            guard head.status.code >= 200, case .sent(let port, _) = exchange.phase else { return .none }
            exchange.phase = .answering
            turn = .preview(exchange)
            return .writeResponseHead(exchange.responseHead(head, port: port))
        case .body(let buffer):
            guard case .answering = exchange.phase else { return .none }
            return .writeResponseBody(buffer)
        case .end:
            // The end of an informational answer (its head was not relayed) ends nothing.
            guard case .answering = exchange.phase else { return .none }
            return .endResponse(finishExchange(exchange, closingUpstream: nil))
        }
    }

    mutating func upstreamInactive(_ id: PreviewProxyStateMachine.UpstreamID) -> Action {
        guard upstream?.id == id else { return .none }
        upstream = nil
        guard case .preview(let exchange) = turn else { return .none }
        switch exchange.phase {
        case .resolving:
            return .none
        case .sent(_, let bodySent):
            // A kept-alive connection the workspace's server had closed (its idle timeout, or the workspace slept) as
            // the request went out: sent once more on a new connection, when nothing of it can have been taken.
            if !bodySent, !exchange.retried, body != .exchange {
                exchange.retried = true
                exchange.phase = .resolving(pending: [.end(nil)])
                turn = .preview(exchange)
                return .resolve(.init(token: exchange.token, connects: true, reusable: nil, sendsContinue: false))
            }
            return fail(AgentBoxError(.badGateway, "the workspace's server closed the connection before it answered"))
        case .answering:
            return fail(AgentBoxError(.badGateway, "the workspace's server closed the connection in the middle of its answer"))
        }
    }

    /// ``fail(_:)``, for the machine's own events.
    mutating func failExchange(_ error: any Error) -> Action { fail(error) }

    /// The exchange failed: before its answer began, a problem+json answer; after, the connection closes.
    private mutating func fail(_ error: any Error) -> Action {
        guard case .preview(let exchange) = turn else { return .none }
        let dropped = upstream?.id
        upstream = nil
        if case .answering = exchange.phase {
            turn = .closing
            waiting.removeAll()
            return .closeConnection(upstream: dropped)
        }
        return .answer(.problem(error), finishExchange(exchange, closingUpstream: dropped))
    }

    /// Ends the exchange in progress (its answer's end goes out with the action returned): the connection is free for
    /// what waits, or closing after the client's `Connection: close`.
    private mutating func finishExchange(_ exchange: PreviewExchange, closingUpstream dropped: PreviewProxyStateMachine.UpstreamID?) -> PreviewProxyStateMachine.AnswerEnd {
        var dropped = dropped
        if body == .exchange {
            body = .discard
            // Answered before its request ended: part of the body may sit unread in the workspace's server, which
            // would read it as its next request on that connection (one with the client's own `Host` and
            // `X-Forwarded-*`, past this proxy's rules). The connection is not used again, as nginx does.
            if dropped == nil, !exchange.isAnsweredHere, let id = upstream?.id {
                dropped = id
                upstream = nil
            }
        }
        guard exchange.closesConnection else {
            turn = .free
            return .init(closesConnection: false, closeUpstream: dropped)
        }
        // As the routes do for `Connection: close`: what was pipelined after it is not answered.
        turn = .closing
        waiting.removeAll()
        let closing = dropped ?? upstream?.id
        upstream = nil
        return .init(closesConnection: true, closeUpstream: closing)
    }
}
