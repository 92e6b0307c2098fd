import AgentBoxACP
import Foundation

// agentbox-claude-acp [--claude PATH]: speaks ACP on stdio and drives Claude Code (stream-json) for each session.
// Linked with a static Swift runtime and Foundation, so that it runs inside a workspace's sandbox; AgentBox mounts
// it at /.agentbox/bin/claude-acp and the installed `claude` at /.agentbox/agents/claude/claude.
var claude = ProcessInfo.processInfo.environment["AGENTBOX_CLAUDE_PATH"] ?? "/.agentbox/agents/claude/claude"
let arguments = CommandLine.arguments
if let at = arguments.firstIndex(of: "--claude"), at + 1 < arguments.count { claude = arguments[at + 1] }
let connection = StandardIO.connection()
let adapter = ClaudeCodeAdapter(connection: connection, claudePath: claude)
await adapter.start()
await StandardIO.serve(connection)
await adapter.stopAll()
