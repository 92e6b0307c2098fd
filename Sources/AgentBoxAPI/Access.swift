import Foundation

/// What a token may do. `admin` everything; `user` use and create the workspaces its patterns match; `reader` only
/// read (GET and streams) those.
public enum TokenRole: String, Codable, Sendable, CaseIterable {
    case admin
    case user
    case reader
}

/// The body of `POST /v1/tokens`.
public struct TokenCreateRequest: Codable, Sendable, Equatable {
    /// Workspace keys, or prefixes ending in `*` (`team-a-*`); `["*"]` is every workspace.
    public var workspaces: [String]
    public var role: TokenRole
    /// The token stops working this many seconds after it is made (absent: never).
    public var expiresInSeconds: Int?
    public var label: String?

    public init(workspaces: [String], role: TokenRole, expiresInSeconds: Int? = nil, label: String? = nil) {
        self.workspaces = workspaces
        self.role = role
        self.expiresInSeconds = expiresInSeconds
        self.label = label
    }
}

/// A token as the API shows it. `token`, the secret, is present only in the answer to its creation: the server keeps a
/// hash of it.
public struct AccessToken: Codable, Sendable, Equatable {
    public var id: String
    public var token: String?
    public var workspaces: [String]
    public var role: TokenRole
    public var createdAt: Date
    public var expiresAt: Date?
    public var label: String?
    /// The token this one was made from by an Inspector login link; revoking that one revokes this one.
    public var parentId: String?

    public init(
        id: String, token: String? = nil, workspaces: [String], role: TokenRole, createdAt: Date, expiresAt: Date? = nil, label: String? = nil,
        parentId: String? = nil
    ) {
        self.parentId = parentId
        self.id = id
        self.token = token
        self.workspaces = workspaces
        self.role = role
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.label = label
    }

    /// Whether `pattern` (a key, or a prefix ending in `*`) matches workspace `key`.
    public static func pattern(_ pattern: String, matches key: String) -> Bool {
        pattern.hasSuffix("*") ? key.hasPrefix(pattern.dropLast()) : pattern == key
    }
}

/// `GET /v1/tokens`: the tokens that are not revoked, without their secrets.
public struct AccessTokenList: Codable, Sendable, Equatable {
    public var items: [AccessToken]
    public init(items: [AccessToken]) { self.items = items }
}

/// `POST /v1/login-links`: a one-time code that logs a browser into the Inspector as the caller, for a short while.
/// `url` is the Inspector's path with the code (`/ui/#login=CODE`; the fragment never reaches a server or a log).
public struct LoginLink: Codable, Sendable, Equatable {
    public var code: String
    public var url: String
    public var expiresAt: Date

    public init(code: String, url: String, expiresAt: Date) {
        self.code = code
        self.url = url
        self.expiresAt = expiresAt
    }
}

/// The body of `POST /v1/login`: a login link's code, exchanged (once) for a token of the link maker's role and
/// workspaces (an ``AccessToken`` with its secret).
public struct LoginRequest: Codable, Sendable, Equatable {
    public var code: String
    public init(code: String) { self.code = code }
}
