import AgentBox
import AgentBoxAPI
import Foundation
import Testing

@Suite("The mock agent inside a sandbox", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct MockAgentInSandboxTests {
    /// The static mock agent is mounted read-only at /.agentbox/bin/mock-agent and speaks ACP there.
    @Test func theMockAgentRunsInsideTheWorkspace() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory)
            _ = try await manager.run("agent", "true")
            let conversation = [
                #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1,"clientCapabilities":{"fs":{"readTextFile":true,"writeTextFile":true},"terminal":true}}}"#,
                #"{"jsonrpc":"2.0","id":2,"method":"session/new","params":{"cwd":"/workspace","mcpServers":[]}}"#,
                #"{"jsonrpc":"2.0","id":3,"method":"session/prompt","params":{"sessionId":"mock-session-1","prompt":[{"type":"text","text":"inside plan"}]}}"#,
            ].joined(separator: "\n") + "\n"
            let runtime = try await manager.runtime(for: key("agent"))
            // The agent stops at the end of its input; the pause lets the prompt's answer out first.
            let result = try await runtime.exec(
                ExecRequest(command: "(cat; sleep 0.5) | /.agentbox/bin/mock-agent; touch /.agentbox/bin/mock-agent 2>&1", stdin: conversation))
            #expect(result.stdout.contains(#""sessionUpdate":"plan""#), "\(result.stdout)")
            #expect(result.stdout.contains(#"{"id":3,"jsonrpc":"2.0","result":{"stopReason":"end_turn","usage":{"#), "\(result.stdout)")
            #expect(result.stdout.contains("cannot touch"), "the agent's binary cannot be changed from inside")
            await manager.shutdown()
        }
    }
}
