/// An RFC 9457 problem document (`application/problem+json`), the body of every AgentBox error response.
public struct Problem: Codable, Sendable, Equatable, Error, CustomStringConvertible {
    /// A stable URI naming the kind of problem (`https://agentbox.dev/problems/not-found`, ...; `about:blank` for a
    /// status without a kind of its own). Clients branch on it, never on `detail`.
    public var type: String
    /// A short summary of the kind of problem.
    public var title: String
    /// The HTTP status code.
    public var status: Int
    /// What went wrong this time, in words a caller can act on.
    public var detail: String

    public init(type: String = "about:blank", title: String, status: Int, detail: String) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
    }

    public var description: String { "\(status) \(title): \(detail)" }
}
