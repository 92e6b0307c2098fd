import AgentBoxAPI

/// The one error type of the AgentBox library. The server maps each ``Code`` to an HTTP status once, at its edge.
public struct AgentBoxError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The request is malformed: a bad key, path, field or value.
        public static let invalidArgument = Code(name: "invalidArgument")
        /// The named workspace (or thing inside it) does not exist.
        public static let notFound = Code(name: "notFound")
        /// The request conflicts with the current state (for example, the workspace is being destroyed).
        public static let conflict = Code(name: "conflict")
        /// The feature named in the request is not available on this server.
        public static let unsupported = Code(name: "unsupported")
        /// The request reaches for something the workspace may not touch (a path escaping it, a read-only mount).
        public static let forbidden = Code(name: "forbidden")
        /// The caller's credential is unknown, used up or expired (HTTP 401).
        public static let unauthenticated = Code(name: "unauthenticated")
        /// The disk is full, or a quota was reached.
        public static let storageFull = Code(name: "storageFull")
        /// What the request carries (an environment, arguments) is larger than AgentBox takes.
        public static let tooLarge = Code(name: "tooLarge")
        /// The workspace is at one of its limits (its processes), for now: the request may work later.
        public static let limitReached = Code(name: "limitReached")
        /// A wait ended before what it waited for happened.
        public static let timeout = Code(name: "timeout")
        /// AgentBox is shutting down.
        public static let unavailable = Code(name: "unavailable")
        /// A server inside the workspace refused or broke the connection, or answered with something unusable.
        public static let badGateway = Code(name: "badGateway")
        /// A server inside the workspace did not answer in time.
        public static let gatewayTimeout = Code(name: "gatewayTimeout")
        /// Something failed inside AgentBox; the message says what.
        public static let internalError = Code(name: "internal")
        public var description: String { name }
    }

    public let code: Code
    /// What went wrong, in words a caller can act on.
    public let message: String
    public let underlyingError: (any Error)?

    public init(_ code: Code, _ message: String, underlyingError: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlyingError = underlyingError
    }

    public var description: String { message }

    static func workspaceNotFound(_ key: WorkspaceKey) -> AgentBoxError {
        AgentBoxError(.notFound, "no workspace '\(key)'")
    }
}
