/// The one error type of the MCP tools: a message for the caller, which ``AgentBoxTools`` returns as a tool error
/// (`isError: true`) so that the agent reads it and can correct itself. It never carries host paths or internal text.
public struct MCPToolError: Error, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
