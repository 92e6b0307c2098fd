import Foundation
import NIOCore
import NIOHTTP1

/// How a preview request becomes a request to the workspace's server, and its answer one to the client: the
/// header rules of a reverse proxy (RFC 9110 §7.6), plus the permissive CORS of a development preview. The request
/// side: `Host` becomes `localhost:{port}` (development servers check it); the public host, scheme and prefix travel
/// as `X-Forwarded-Host`, `X-Forwarded-Proto` and `X-Forwarded-Prefix` (the server's `PreviewProxyHandler`).
public enum PreviewProxy {
    /// Headers that describe one connection, not the message, and so are never forwarded; plus `host` and
    /// `content-length`, which the proxy sets itself.
    public static let connectionHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length",
    ]

    /// The answer's headers for the client: connection headers dropped, a `Location` on the workspace's own origin
    /// moved under `prefix`, and CORS opened to every origin unless the server set its own.
    public static func responseHeaders(_ headers: HTTPHeaders, port: Int, prefix: String) -> [(name: String, value: String)] {
        let list = headers.map { (name: $0.name, value: $0.value) }
        let dropped = connectionHeaders.subtracting(["content-length"]).union(named(in: list))
        var result: [(name: String, value: String)] = []
        for (name, value) in list where !dropped.contains(name.lowercased()) {
            result.append((name, name.lowercased() == "location" ? relocate(value, port: port, prefix: prefix) : value))
        }
        if !list.contains(where: { $0.name.lowercased() == "access-control-allow-origin" }) {
            result.append(("access-control-allow-origin", "*"))
            result.append(("access-control-expose-headers", "*"))
        }
        return result
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`), given without
    /// asking the workspace: everything is allowed.
    public static func preflightHeaders(requestedMethod: String?, requestedHeaders: String?) -> [(name: String, value: String)] {
        [
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", requestedMethod ?? "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            ("access-control-allow-headers", requestedHeaders ?? "*"),
            ("access-control-max-age", "600"),
        ]
    }

    /// The names listed in `Connection` headers, which are hop-by-hop too.
    public static func named(in headers: [(name: String, value: String)]) -> Set<String> {
        Set(
            headers.filter { $0.name.lowercased() == "connection" }
                .flatMap { $0.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } })
    }

    /// `/x` and `http://localhost:{port}/x` (or 127.0.0.1) become `{prefix}/x`; anything else is left alone.
    static func relocate(_ location: String, port: Int, prefix: String) -> String {
        for origin in ["http://localhost:\(port)", "http://127.0.0.1:\(port)"] where location.hasPrefix(origin) {
            let rest = location.dropFirst(origin.count)
            if rest.isEmpty || rest.hasPrefix("/") || rest.hasPrefix("?") { return prefix + (rest.hasPrefix("/") ? rest : "/" + rest) }
        }
        if location.hasPrefix("/"), !location.hasPrefix("//") { return prefix + location }
        return location
    }
}
