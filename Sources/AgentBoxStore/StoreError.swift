/// An error from a ``Store``: what went wrong, in the store's own terms, whatever engine is behind it.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure: one of the static values, stable across store implementations.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The record the operation needs is not there.
        public static let notFound = Code(name: "notFound")
        /// A record with the same identity (id, key, token hash, session and seq) is stored already.
        public static let conflict = Code(name: "conflict")
        /// An argument is outside what the requirement accepts.
        public static let invalidArgument = Code(name: "invalidArgument")
        /// The stored data cannot be read back (corrupt or from a newer version).
        public static let corrupt = Code(name: "corrupt")
        /// The store is closed.
        public static let closed = Code(name: "closed")
        /// A write for a workspace whose lease this node does not hold (any more): another node owns it
        /// (``ClusterStore``).
        public static let fenced = Code(name: "fenced")
        public var description: String { name }
    }

    public let code: Code
    public let message: String
    public let underlyingError: (any Error)?

    public init(_ code: Code, _ message: String, underlyingError: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlyingError = underlyingError
    }

    public var description: String {
        if let underlyingError { return "\(message): \(underlyingError)" }
        return message
    }
}
