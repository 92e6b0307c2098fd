/// The answer of `GET /v1/health`.
public struct Health: Codable, Sendable, Equatable {
    public var status: String
    public var version: String

    public init(status: String = "ok", version: String) {
        self.status = status
        self.version = version
    }
}

/// The version of AgentBox, reported by `/v1/health` and `agentbox --version`.
public let agentBoxVersion = "0.1.0"
