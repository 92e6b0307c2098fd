import Foundation

/// `POST /v1/workspaces/{key}/fetch`: one HTTP request to a server listening inside the workspace.
public struct FetchRequest: Codable, Sendable, Equatable {
    /// The port inside the workspace (on its loopback).
    public var port: Int
    /// The request target, starting with `/` (query included).
    public var path: String
    /// GET when absent.
    public var method: String?
    public var headers: [String: String]?
    /// The request body, base64.
    public var body: String?

    public init(port: Int, path: String, method: String? = nil, headers: [String: String]? = nil, body: String? = nil) {
        self.port = port
        self.path = path
        self.method = method
        self.headers = headers
        self.body = body
    }
}

/// The answer of a fetch.
public struct FetchResponse: Codable, Sendable, Equatable {
    public var status: Int
    /// Header names in lower case; repeated headers are joined with ", ".
    public var headers: [String: String]
    /// The response body, base64.
    public var body: String

    public init(status: Int, headers: [String: String], body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body's bytes.
    public var bodyData: Data { Data(base64Encoded: body) ?? Data() }
}

/// `POST /v1/workspaces/{key}/previews`.
public struct PreviewRequest: Codable, Sendable, Equatable {
    public var port: Int
    /// How long the preview URL works; the server's default (1 h) when absent, at most its maximum (24 h).
    public var expiresInSeconds: Int?

    public init(port: Int, expiresInSeconds: Int? = nil) {
        self.port = port
        self.expiresInSeconds = expiresInSeconds
    }
}

/// A preview URL: `/preview/{token}/...` reaches the workspace's port `port` until `expiresAt`.
public struct Preview: Codable, Sendable, Equatable {
    /// The credential: shown once, here. The server keeps only its SHA-256.
    public var token: String
    /// What the list and revocation name it by afterwards (see ``PreviewList/Item/id``).
    public var id: String
    public var port: Int
    /// `/preview/{token}/`.
    public var path: String
    /// The absolute URL, when the server knows how it is reached.
    public var url: String?
    public var expiresAt: Date

    public init(token: String, id: String, port: Int, path: String, url: String?, expiresAt: Date) {
        self.token = token
        self.id = id
        self.port = port
        self.path = path
        self.url = url
        self.expiresAt = expiresAt
    }
}

/// `GET /v1/workspaces/{key}/previews`.
public struct PreviewList: Codable, Sendable, Equatable {
    /// A preview as the server knows it after it was made: by its id, since it keeps only a hash of the token.
    public struct Item: Codable, Sendable, Equatable {
        /// The first 16 hex digits of the token's SHA-256: enough to tell a workspace's previews apart and to revoke
        /// one, useless to reach it.
        public var id: String
        public var port: Int
        public var expiresAt: Date
        public init(id: String, port: Int, expiresAt: Date) {
            self.id = id
            self.port = port
            self.expiresAt = expiresAt
        }
    }
    public var items: [Item]
    public init(items: [Item]) { self.items = items }
}

/// `egressDenied`: the workspace's egress proxy refused a connection (answered 403).
public struct EgressDeniedEvent: Codable, Sendable, Equatable {
    /// The target as the process named it.
    public var host: String
    public var port: Int
    /// Why: `policy` (no rule allows it) or `address` (every address it resolves to is the host's own, private,
    /// link-local or otherwise special, which no policy opens; the server's admin may allow ranges).
    public var reason: String
    /// In words, when there is more to say: for `address`, which address and what it is
    /// (`10.0.0.1 is in a private network (RFC 1918)`).
    public var detail: String?

    public init(host: String, port: Int, reason: String, detail: String? = nil) {
        self.host = host
        self.port = port
        self.reason = reason
        self.detail = detail
    }
}
