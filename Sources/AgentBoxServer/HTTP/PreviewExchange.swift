import AgentBox
import NIOHTTP1

/// One proxied request and where its answer stands, as ``PreviewProxyStateMachine`` tracks it: what the client asked
/// (the token, the target inside the workspace, the head as it came) and the exchange's ``Phase``. It also builds the
/// heads that go out for it: the request for the workspace's server, the answer for the client, and the answers
/// given without the workspace's server.
///
/// A class: the state machine's turn holds it while its phase changes several times per request, and a reference
/// is one retain where a struct of strings and a head were a retain each, on every change.
final class PreviewExchange {
    /// Where an exchange is between the client's request head and the end of its answer.
    enum Phase {
        /// The token is being resolved and, when the workspace's server is needed, a connection made into the
        /// workspace (``PreviewProxyStateMachine/Action/resolve(_:)``). Reading is paused meanwhile, so `pending` holds
        /// at most what one read had already brought: the parts of the request that came before it could be sent.
        case resolving(pending: [HTTPServerRequestPart])
        /// The head went to the workspace's server on the connection to `port`, and the body follows as it comes;
        /// no answer yet. If that connection closes now, a request that has ended and sent no body bytes
        /// (`bodySent`) goes back to `resolving`, once, to be sent again on a new connection; any other fails (502).
        case sent(port: Int, bodySent: Bool)
        /// The answer's head went to the client: from here a failure can only close the client's connection.
        case answering
    }

    let token: String
    /// The path and query inside the workspace (`//x` made `/x`, so that it is not read as an authority).
    let target: String
    /// The prefix the preview lives under (`/preview/{token}`, empty on a preview host).
    let prefix: String
    /// The client's head, after ``PreviewRequestHead/withoutForeignUpgrade(_:)``.
    let request: HTTPRequestHead
    /// The names the client's `Connection` headers list (hop-by-hop, so not sent on).
    let connectionListed: [String]
    /// The client's `Connection: close` (or HTTP/1.0 without keep-alive): the answer says so, and the connection
    /// closes after it. Also a WebSocket upgrade that the workspace's server does not take: NIO's parser reads nothing
    /// more after an upgrade request.
    var closesConnection: Bool
    /// A WebSocket upgrade (``PreviewRequestHead/isWebSocketUpgrade(_:)``): sent on with `Upgrade: websocket`, and
    /// after a `101` answer the connection's bytes are relayed (``PreviewByteRelay``).
    let isWebSocket: Bool
    /// Sent once already on a connection the workspace's server had closed: the next such close is a failure.
    var retried = false
    var phase: Phase = .resolving(pending: [])

    init(_ address: PreviewTarget, request: HTTPRequestHead, isWebSocket: Bool = false) {
        token = address.token
        target = address.target.hasPrefix("//") ? "/" + address.target.drop(while: { $0 == "/" }) : address.target
        prefix = address.prefix
        self.request = request
        self.isWebSocket = isWebSocket
        connectionListed = PreviewProxy.listedInConnection(request.headers["connection"])
        closesConnection =
            isWebSocket || connectionListed.contains("close") || (request.version.minor == 0 && !connectionListed.contains("keep-alive"))
    }

    /// The bare `/preview/{token}` (a redirect) and CORS preflights are answered without the workspace's server.
    var isAnsweredHere: Bool { isBare || PreviewRequestHead.isPreflight(request) }

    private var isBare: Bool { target.isEmpty || target.hasPrefix("?") }

    /// The whole answer (it has no body) when this request is answered here, once its token has been found valid.
    var localAnswer: HTTPResponseHead? {
        var head: HTTPResponseHead
        if isBare {
            // Pages use relative URLs: the root of a preview is its directory.
            head = HTTPResponseHead(version: .http1_1, status: .permanentRedirect, headers: ["location": prefix + "/" + target, "content-length": "0"])
        } else if PreviewRequestHead.isPreflight(request) {
            let headers = PreviewProxy.preflightHeaders(
                requestedMethod: request.headers.first(name: "access-control-request-method"),
                requestedHeaders: request.headers.first(name: "access-control-request-headers"))
            head = HTTPResponseHead(version: .http1_1, status: .noContent, headers: HTTPHeaders(headers.map { ($0.name, $0.value) }))
        } else {
            return nil
        }
        if closesConnection { head.headers.replaceOrAdd(name: "connection", value: "close") }
        return head
    }

    /// The request head for the workspace's server: hop-by-hop headers dropped, `Host` its own, and where the
    /// client reached it in `X-Forwarded-*` (see ``PreviewProxy``).
    ///
    /// An `Authorization` that carries an AgentBox credential (the server's token, or an API token) is not sent on:
    /// a client that sends its token with every request (an SDK's default header, a script pointed at a preview
    /// host) must not hand it to the workspace's code. Any other `Authorization` is the workspace's app's own.
    ///
    /// `X-Forwarded-For` gets the client's address (`clientAddress`) appended to what the client sent, as a reverse proxy
    /// does: the last entry is the one a server behind it can trust.
    func upstreamHead(port: Int, scheme: String = "http", serverToken: String? = nil, clientAddress: String? = nil) -> HTTPRequestHead {
        if port == PreviewUpstream.remotePort { return nodeHead }
        var headers = HTTPHeaders()
        headers.reserveCapacity(request.headers.count + 5)
        headers.add(name: "host", value: "localhost:\(port)")
        var cookies: [String] = []
        var length: String?
        var chunked = false
        var forwardedProto: String?
        var forwardedFor: [String] = []
        for (name, value) in request.headers {
            if PreviewProxy.equalsLowercase(name, "content-length") {
                length = value
            } else if PreviewProxy.equalsLowercase(name, "transfer-encoding") {
                chunked = true
            } else if PreviewProxy.equalsLowercase(name, "cookie") {
                cookies.append(value)
            } else if PreviewProxy.equalsLowercase(name, "x-forwarded-proto") {
                forwardedProto = value
            } else if PreviewProxy.equalsLowercase(name, "x-forwarded-for") {
                forwardedFor.append(value)
            } else if PreviewProxy.equalsLowercase(name, "authorization") || PreviewProxy.equalsLowercase(name, "x-api-key"),
                PreviewProxy.isAgentBoxCredential(value, serverToken: serverToken)
            {
                continue
            } else if PreviewProxy.equalsLowercase(name, "x-forwarded-host") || PreviewProxy.equalsLowercase(name, "x-forwarded-prefix")
                // `Expect` too: the client had its `100 Continue` from here.
                || PreviewProxy.equalsLowercase(name, "expect")
                || PreviewProxy.equalsLowercase(name, PreviewRequestHead.webSocketMarker)
                || PreviewProxy.connectionHeaders.contains(where: { PreviewProxy.equalsLowercase(name, $0) })
                || connectionListed.contains(where: { PreviewProxy.equalsLowercase(name, $0) })
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
        headers.add(name: "x-forwarded-prefix", value: prefix)
        if let clientAddress { forwardedFor.append(clientAddress) }
        if !forwardedFor.isEmpty { headers.add(name: "x-forwarded-for", value: forwardedFor.joined(separator: ", ")) }
        if isWebSocket {
            // Hop-by-hop, so dropped above; an upgrade says them again on each hop (`Sec-WebSocket-*` went on as they came).
            headers.add(name: "connection", value: "upgrade")
            headers.add(name: "upgrade", value: "websocket")
        }
        return HTTPRequestHead(version: .http1_1, method: request.method, uri: target, headers: headers)
    }

    /// What belongs to one connection between a client and a node (`Host` and `Content-Length` go on, unlike
    /// ``PreviewProxy/connectionHeaders``: the next node reads the preview from them).
    static let nodeHopByHop = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]

    /// The request head for the node of the cluster that serves the workspace: the client's, as it came (its target
    /// and `Host` name the preview there too), without what belongs to this connection, and marked as forwarded.
    var nodeHead: HTTPRequestHead {
        var headers = HTTPHeaders()
        for (name, value) in request.headers {
            if PreviewProxy.equalsLowercase(name, "expect") || Self.nodeHopByHop.contains(where: { PreviewProxy.equalsLowercase(name, $0) })
                || connectionListed.contains(where: { PreviewProxy.equalsLowercase(name, $0) })
            {
                continue
            }
            headers.add(name: name, value: value)
        }
        if request.headers.contains(name: "transfer-encoding") { headers.add(name: "transfer-encoding", value: "chunked") }
        headers.add(name: "x-agentbox-forwarded-by", value: "preview")
        return HTTPRequestHead(version: .http1_1, method: request.method, uri: request.uri, headers: headers)
    }

    /// The answer's head for the client, from the one the workspace's server on `port` gave (see
    /// ``PreviewProxy/responseHeaders(_:port:prefix:)``).
    func responseHead(_ head: HTTPResponseHead, port: Int) -> HTTPResponseHead {
        if head.status == .switchingProtocols {
            // The upgrade was taken: the connection stays open for the WebSocket's bytes.
            var headers = PreviewProxy.responseHeaders(head.headers, port: port, prefix: prefix)
            headers.add(name: "connection", value: "upgrade")
            headers.add(name: "upgrade", value: "websocket")
            return HTTPResponseHead(version: .http1_1, status: head.status, headers: headers)
        }
        // Another node's answer was made for the client already; only its connection's own headers are dropped.
        var headers =
            port == PreviewUpstream.remotePort
            ? HTTPHeaders(head.headers.filter { name, _ in !Self.nodeHopByHop.contains { PreviewProxy.equalsLowercase(name, $0) } })
            : PreviewProxy.responseHeaders(head.headers, port: port, prefix: prefix)
        if closesConnection { headers.add(name: "connection", value: "close") }
        return HTTPResponseHead(version: .http1_1, status: head.status, headers: headers)
    }
}
