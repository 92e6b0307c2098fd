import AgentBox
import NIOHTTP1

/// Where a preview request goes: the token that names the preview, the target inside the workspace (the path and
/// query after the token), and the prefix the preview lives under (`/preview/{token}`, empty on a preview host).
struct PreviewTarget: Equatable {
    var token: String
    var target: String
    var prefix: String
}

/// What a request head says to the preview proxy: whether it is for a preview, and which; the heads the routes and
/// NIO's upgrade handler get instead of the client's. Pure functions of the head (and of `serve --preview-domain`).
enum PreviewRequestHead {
    /// The preview `request` is for, or `nil` when it is for the routes: not under `/preview/{token}` nor on a preview
    /// host, or a WebSocket upgrade (the preview route relays those).
    ///
    /// With `webSockets` (a server that is not in a cluster), a WebSocket upgrade for a preview is a preview request
    /// too: the proxy relays it, and after the workspace's server answers `101`, the connection's bytes.
    static func target(of request: HTTPRequestHead, previewDomain: String?, webSockets: Bool = false) -> PreviewTarget? {
        if request.headers.contains(name: "upgrade"), !(webSockets && isWebSocketUpgrade(request)) { return nil }
        let path = request.uri
        if let domain = previewDomain, let token = hostToken(request.headers.first(name: "host"), domain: domain) {
            return PreviewTarget(token: token, target: path, prefix: "")
        }
        guard path.hasPrefix("/preview/") else { return nil }
        let rest = path.dropFirst("/preview/".count)
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let token = String(rest[..<end])
        guard !token.isEmpty else { return nil }
        return PreviewTarget(token: token, target: String(rest[end...]), prefix: "/preview/\(token)")
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
        guard request.headers.contains(name: "upgrade"), let domain = previewDomain, let token = hostToken(request.headers.first(name: "host"), domain: domain) else {
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

    /// Says that the connection's first request was a WebSocket upgrade (``UpgradeRequestFilter`` puts it in place of
    /// `Upgrade: websocket`, so that NIO's upgrade handler leaves the request to the preview proxy). A client that
    /// sends it itself asks for what `Upgrade: websocket` asks for, nothing more.
    static let webSocketMarker = "x-agentbox-preview-websocket"

    /// A WebSocket upgrade: `GET` with `Upgrade: websocket` and `Connection: upgrade`, or the ``webSocketMarker``.
    static func isWebSocketUpgrade(_ request: HTTPRequestHead) -> Bool {
        guard request.method == .GET else { return false }
        if request.headers.contains(name: webSocketMarker) { return true }
        guard let upgrade = request.headers.first(name: "upgrade") else { return false }
        let offered = PreviewProxy.listedInConnection([upgrade])
        return offered.count == 1 && offered[0] == "websocket" && PreviewProxy.listedInConnection(request.headers["connection"]).contains("upgrade")
    }

    /// A CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    static func isPreflight(_ request: HTTPRequestHead) -> Bool {
        request.method == .OPTIONS && request.headers.contains(name: "origin") && request.headers.contains(name: "access-control-request-method")
    }

    /// The client waits for `100 Continue` before it sends the body.
    static func expectsContinue(_ request: HTTPRequestHead) -> Bool {
        request.headers["expect"].contains { PreviewProxy.equalsLowercase($0, "100-continue") }
    }
}
