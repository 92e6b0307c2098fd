import AgentBoxACP
import ArgumentParser
import Foundation

/// `agentbox mock-agent`: the deterministic ACP agent (see `MockAgent`) on stdin and stdout.
struct MockAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock-agent",
        abstract: "Run the deterministic mock ACP agent on stdin/stdout (no model, no key).",
        discussion: """
            It echoes each prompt as agent_message_chunks, then acts on keywords: plan, tool, permission, \
            question, write PATH TEXT, read PATH, run COMMAND, flood N, long (honours session/cancel), \
            mcp SERVER TOOL {json}, whoami, getenv NAME, error. See docs/AGENTS.md.
            Examples:
              agentbox session create demo --agent mock      (the server runs it in the workspace)
              printf '%s\\n' '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}}' | agentbox mock-agent
            """)

    @Flag(help: "Do not offer session/load (clients must fall back to a new session).") var noLoad = false
    @Flag(help: "Take text and resource links only (no images, no embedded files).") var textOnly = false

    func run() async throws {
        let connection = StandardIO.connection()
        let agent = MockAgent(connection: connection, canLoad: !noLoad, attachments: !textOnly)  // its handlers hold it weakly: it lives as long as this scope
        await agent.start()
        await StandardIO.serve(connection)
        withExtendedLifetime(agent) {}
    }
}
