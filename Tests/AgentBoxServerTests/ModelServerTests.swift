import AgentBoxAPI
import AgentBoxModelServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@Suite("The scripted model server")
struct ModelServerTests {
    static let script = ModelScript(
        turns: [
            .init(text: "I will write it.", toolCalls: [.init(name: "Write", input: ["file_path": "/workspace/a.txt", "content": "hi"])]),
            .init(match: "second", text: "Matched the second prompt."),
            .init(toolCalls: [.init(name: "shell", input: ["command": ["ls"]])]),
        ], finalText: "No more.", sideText: "Side answer.")

    func withServer(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: ModelServer.router(player: ModelScriptPlayer(script: Self.script), logger: Logger(label: "test")))
        try await app.test(.router) { client in try await body(client) }
    }

    func post(_ client: some TestClientProtocol, _ uri: String, _ body: JSONValue) async throws -> (status: Int, text: String) {
        let response = try await client.execute(uri: uri, method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(bytes: body.jsonBytes))
        return (Int(response.status.code), String(buffer: response.body))
    }

    /// The `data:` objects of an SSE body, with their `event:` names.
    func events(_ text: String) throws -> [(name: String?, data: JSONValue)] {
        try text.components(separatedBy: "\n\n").filter { !$0.isEmpty && !$0.contains("[DONE]") }.map { frame in
            var name: String?
            var data = ""
            for line in frame.split(separator: "\n") {
                if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
            }
            return (name, try JSONValue.parse(data))
        }
    }

    static let tools: JSONValue = [["name": "Write", "input_schema": ["type": "object"]]]

    @Test func anthropicMessagesStreamTextAndToolUseThenFollowTheScript() async throws {
        try await withServer { client in
            let first = try await post(
                client, "/v1/messages",
                ["model": "claude-x", "stream": true, "tools": Self.tools, "messages": [["role": "user", "content": "first"]]])
            #expect(first.status == 200)
            let frames = try events(first.text)
            #expect(frames.first?.name == "message_start" && frames.last?.name == "message_stop")
            let text = frames.compactMap { $0.data["delta"]?["text"]?.stringValue }.joined()
            #expect(text == "I will write it.")
            let toolStart = frames.first { $0.data["content_block"]?["type"]?.stringValue == "tool_use" }
            #expect(toolStart?.data["content_block"]?["name"]?.stringValue == "Write")
            let input = frames.compactMap { $0.data["delta"]?["partial_json"]?.stringValue }.joined()
            #expect(try JSONValue.parse(input) == ["content": "hi", "file_path": "/workspace/a.txt"])
            #expect(frames.first { $0.name == "message_delta" }?.data["delta"]?["stop_reason"]?.stringValue == "tool_use")

            // A request without tools is a side request: it takes no turn.
            let side = try await post(client, "/v1/messages", ["model": "claude-x", "messages": [["role": "user", "content": "title?"]]])
            #expect(try JSONValue.parse(side.text)["content"] == [["type": "text", "text": "Side answer."]])
            // `match` picks the turn that names the prompt; then the script goes on, then finalText.
            let second = try JSONValue.parse(
                try await post(client, "/v1/messages", ["tools": Self.tools, "messages": [["role": "user", "content": [["type": "text", "text": "the second one"]]]]]).text)
            #expect(second["content"] == [["type": "text", "text": "Matched the second prompt."]] && second["stop_reason"] == "end_turn")
            _ = try await post(client, "/v1/messages", ["tools": Self.tools, "messages": [["role": "user", "content": "x"]]])
            let done = try JSONValue.parse(try await post(client, "/v1/messages", ["tools": Self.tools, "messages": []]).text)
            #expect(done["content"] == [["type": "text", "text": "No more."]])
            let count = try JSONValue.parse(try await post(client, "/v1/messages/count_tokens", ["messages": []]).text)
            #expect(count["input_tokens"] != nil)
        }
    }

    @Test func openAIResponsesStreamFunctionCalls() async throws {
        try await withServer { client in
            let reply = try await post(
                client, "/v1/responses", ["model": "gpt-x", "stream": true, "tools": Self.tools, "input": [["role": "user", "content": [["type": "input_text", "text": "go"]]]]])
            let frames = try events(reply.text)
            #expect(frames.first?.name == "response.created" && frames.last?.name == "response.completed")
            #expect(frames.compactMap { $0.name == "response.output_text.delta" ? $0.data["delta"]?.stringValue : nil }.joined() == "I will write it.")
            let call = frames.last?.data["response"]?["output"].flatMap { output -> JSONValue? in
                if case .array(let items) = output { return items.first { $0["type"] == "function_call" } }
                return nil
            }
            #expect(call?["name"] == "Write" && call?["call_id"]?.stringValue?.hasPrefix("call_") == true)
            #expect(try JSONValue.parse(call?["arguments"]?.stringValue ?? "") == ["content": "hi", "file_path": "/workspace/a.txt"])
        }
    }

    @Test func openAIChatCompletionsStreamToolCalls() async throws {
        try await withServer { client in
            _ = try await post(client, "/v1/chat/completions", ["tools": Self.tools, "messages": [["role": "user", "content": "first"]]])
            _ = try await post(client, "/v1/chat/completions", ["tools": Self.tools, "messages": [["role": "user", "content": "second"]]])
            let reply = try await post(client, "/v1/chat/completions", ["stream": true, "tools": Self.tools, "messages": [["role": "user", "content": "third"]]])
            #expect(reply.text.hasSuffix("data: [DONE]\n\n"))
            let chunks = try events(reply.text)
            let call = chunks.compactMap { chunk -> JSONValue? in
                if case .array(let calls)? = chunk.data["choices"]?[0]?["delta"]?["tool_calls"] { return calls.first }
                return nil
            }.first
            #expect(call?["function"]?["name"] == "shell")
            #expect(chunks.last?.data["choices"]?[0]?["finish_reason"] == "tool_calls")
        }
    }

    @Test func badBodiesAre400() async throws {
        try await withServer { client in
            let response = try await client.execute(uri: "/v1/messages", method: .post, body: ByteBuffer(string: "{not json"))
            #expect(response.status == .badRequest)
        }
    }
}

extension JSONValue {
    fileprivate subscript(index: Int) -> JSONValue? {
        if case .array(let items) = self, items.indices.contains(index) { return items[index] }
        return nil
    }
}
