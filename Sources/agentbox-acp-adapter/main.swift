import AgentBoxACP
import Foundation

// agentbox-acp-adapter claude [--claude PATH] | codex [--codex PATH]
//
// Speaks ACP on stdio and drives a real agent's own protocol: Claude Code's stream-json, or Codex's app server.
// Linked with a static Swift runtime and Foundation, so that it runs inside a workspace's sandbox; AgentBox mounts
// it at /.agentbox/bin/acp-adapter and the installed agents under /.agentbox/agents.
let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: String) -> String {
    if let at = arguments.firstIndex(of: name), at + 1 < arguments.count { return arguments[at + 1] }
    return fallback
}
let connection = StandardIO.connection()
switch arguments.dropFirst().first {
case "claude":
    let adapter = ClaudeCodeAdapter(connection: connection, claudePath: option("--claude", "/.agentbox/agents/claude/claude"))
    await adapter.start()
    await StandardIO.serve(connection)
    await adapter.stopAll()
case "codex":
    let adapter = CodexAdapter(connection: connection, codexPath: option("--codex", "/.agentbox/agents/codex/codex"))
    await adapter.start()
    await StandardIO.serve(connection)
    await adapter.stopAll()
default:
    FileHandle.standardError.write(Data("usage: agentbox-acp-adapter claude [--claude PATH] | codex [--codex PATH]\n".utf8))
    exit(2)
}
