import Foundation
import NIOCore
import NIOHTTP1

/// How a preview request becomes a request to the workspace's server, and its answer one to the client: the
/// header rules of a reverse proxy (RFC 9110 §7.6), plus the permissive CORS of a development preview. The request
/// side: `Host` becomes `localhost:{port}` (development servers check it); the public host, scheme and prefix travel
/// as `X-Forwarded-Host`, `X-Forwarded-Proto` and `X-Forwarded-Prefix` (the server's `PreviewProxyHandler`).
enum PreviewProxy {
    /// Headers that describe one connection, not the message, and so are never forwarded; plus `host` and
    /// `content-length`, which the proxy sets itself.
    static let connectionHeaders: [String] = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length",
    ]

    /// The answer's headers for the client: connection headers dropped, a `Location` on the workspace's own origin
    /// moved under `prefix`, and CORS opened to every origin unless the server set its own.
    ///
    /// This runs for every proxied answer, so names are compared in place, ASCII case-insensitively, with nothing
    /// built per header but the result.
    static func responseHeaders(_ headers: HTTPHeaders, port: Int, prefix: String) -> HTTPHeaders {
        let listed = listedInConnection(headers["connection"])
        var result = HTTPHeaders()
        result.reserveCapacity(headers.count + 2)
        var allowsOrigin = false
        for (name, value) in headers {
            if listed.contains(where: { equalsLowercase(name, $0) }) { continue }
            if equalsLowercase(name, "content-length") {
                result.add(name: name, value: value)
                continue
            }
            if connectionHeaders.contains(where: { equalsLowercase(name, $0) }) { continue }
            if equalsLowercase(name, "access-control-allow-origin") { allowsOrigin = true }
            if equalsLowercase(name, "set-cookie") {
                result.add(name: name, value: scopedCookie(value, prefix: prefix))
                continue
            }
            result.add(name: name, value: equalsLowercase(name, "location") ? relocate(value, port: port, prefix: prefix) : value)
        }
        if !allowsOrigin {
            result.add(name: "access-control-allow-origin", value: "*")
            result.add(name: "access-control-expose-headers", value: "*")
        }
        return result
    }

    /// Whether `name` equals `lowercase` (a lowercase ASCII name) regardless of case, without lowercasing a copy.
    static func equalsLowercase(_ name: String, _ lowercase: String) -> Bool {
        // Most comparisons fail on the length (O(1) for native strings), before any copy or closure.
        guard name.utf8.count == lowercase.utf8.count else { return false }
        var name = name
        var lowercase = lowercase
        return name.withUTF8 { a in
            lowercase.withUTF8 { b in
                guard a.count == b.count else { return false }
                for index in 0..<a.count {
                    let byte = a[index]
                    if (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) != b[index] { return false }
                }
                return true
            }
        }
    }

    /// The names listed in `Connection` header values (lowercased), which are hop-by-hop too.
    static func listedInConnection(_ values: some Sequence<String>) -> [String] {
        var names: [String] = []
        for value in values {
            for token in value.utf8.split(separator: UInt8(ascii: ",")) {
                let trimmed = token.drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed().drop(while: { $0 == 0x20 || $0 == 0x09 }).reversed()
                if !trimmed.isEmpty { names.append(String(decoding: trimmed, as: UTF8.self).lowercased()) }
            }
        }
        return names
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`), given without
    /// asking the workspace: everything is allowed.
    static func preflightHeaders(requestedMethod: String?, requestedHeaders: String?) -> [(name: String, value: String)] {
        [
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", requestedMethod ?? "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            ("access-control-allow-headers", requestedHeaders ?? "*"),
            ("access-control-max-age", "600"),
        ]
    }

    /// Whether a credential header's value (`Authorization`, `X-API-Key`) carries a credential of this server: its own
    /// token or an API token (`abx_…`, which only this server issues), bare, after a scheme (`Bearer`, any case and
    /// spacing), or as an E2B API key (`e2b_` before either).
    static func isAgentBoxCredential(_ value: String, serverToken: String?) -> Bool {
        for word in value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }) {
            let credential = word.hasPrefix("e2b_") ? word.dropFirst(4) : word[...]
            if credential.hasPrefix("abx_") { return true }
            if let serverToken, constantTimeEquals(String(credential), serverToken) { return true }
        }
        return false
    }

    /// A `Set-Cookie` value kept to the preview it came from: its `Domain` attribute dropped (a host-only cookie: one
    /// preview host cannot set cookies for its siblings or the API's host), and under a path preview its `Path` put
    /// under the preview's prefix (`Path=/` becomes `/preview/{token}/`; without a `Path` the browser's default, the
    /// request's directory, is inside the prefix already). Previews by path share the API's origin: without this, a
    /// workspace's `Path=/` session cookie went to every other path preview the same browser opened.
    static func scopedCookie(_ value: String, prefix: String) -> String {
        let parts = value.split(separator: ";", omittingEmptySubsequences: false)
        guard parts.count > 1 else { return value }
        var kept = [parts[0]]
        for attribute in parts.dropFirst() {
            let trimmed = attribute.drop(while: { $0 == " " || $0 == "\t" })
            let name = trimmed.prefix(while: { $0 != "=" }).trimmingCharacters(in: .whitespaces).lowercased()
            if name == "domain" { continue }
            if name == "path", !prefix.isEmpty {
                let path = trimmed.drop(while: { $0 != "=" }).dropFirst().trimmingCharacters(in: .whitespaces)
                // An app that honours `X-Forwarded-Prefix` scopes its cookies under the prefix itself: kept as it is.
                if path == prefix || path.hasPrefix(prefix + "/") {
                    kept.append(attribute)
                    continue
                }
                kept.append(" Path=" + prefix + (path.hasPrefix("/") ? path : "/" + path))
                continue
            }
            kept.append(attribute)
        }
        return kept.joined(separator: ";")
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
