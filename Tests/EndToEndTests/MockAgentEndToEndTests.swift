import ChildProcessSupport
import Foundation
import Testing

@Suite("agentbox mock-agent on stdio", .timeLimit(.minutes(1)))
struct MockAgentEndToEndTests {
    /// The binary speaks ACP on its stdin and stdout: a whole conversation, one JSON message a line.
    @Test func aConversationOverStdio() async throws {
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: AgentBoxBinary.path)
        process.arguments = ["mock-agent"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let requests = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1,"clientCapabilities":{"fs":{"readTextFile":true,"writeTextFile":true},"terminal":true}}}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"session/new","params":{"cwd":"/workspace","mcpServers":[]}}"#,
            "not json",
            #"{"jsonrpc":"2.0","id":3,"method":"session/prompt","params":{"sessionId":"mock-session-1","prompt":[{"type":"text","text":"hi tool"}]}}"#,
        ]
        input.fileHandleForWriting.write(Data((requests.joined(separator: "\n") + "\n").utf8))
        // Read until the answers of the session and the prompt, then hang up.
        let lines = await onOwnThread { () -> [String] in
            var text = ""
            while !(text.contains(#""id":3"#) && text.contains(#""id":2"#)) || !text.hasSuffix("\n") {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return text.split(separator: "\n").map(String.init)
        }
        try input.fileHandleForWriting.close()
        #expect(await waitForExit(process) == 0)
        let messages = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
        // Requests are answered concurrently, so answers may come in any order (JSON-RPC allows it): find id 1's.
        #expect((messages.first { $0["id"] as? Int == 1 }?["result"] as? [String: Any])?["protocolVersion"] as? Int == 1)
        #expect(messages.contains { ($0["error"] as? [String: Any])?["code"] as? Int == -32700 }, "a bad line gets a parse error")
        let kinds = messages.compactMap { (($0["params"] as? [String: Any])?["update"] as? [String: Any])?["sessionUpdate"] as? String }
        #expect(kinds == ["agent_message_chunk", "agent_message_chunk", "tool_call", "tool_call_update", "tool_call_update"])
        // The prompt's answer, by its id: the session's (id 2) may come after it.
        #expect((messages.first { $0["id"] as? Int == 3 }?["result"] as? [String: Any])?["stopReason"] as? String == "end_turn", "\(lines)")
    }
}
