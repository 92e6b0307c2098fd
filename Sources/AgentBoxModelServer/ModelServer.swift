import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// `agentbox dev model-server`: the Anthropic Messages API and the OpenAI Chat Completions and Responses APIs,
/// answering from a ``ModelScript``, with SSE streaming as the real services do it. For tests and offline demos.
///
/// Point an agent at it: `ANTHROPIC_BASE_URL=http://HOST:PORT` (Claude Code), `OPENAI_BASE_URL=http://HOST:PORT/v1`
/// (Codex and other OpenAI clients). Any key is accepted.
public enum ModelServer {
    public static func router(player: ModelScriptPlayer, logger: Logger) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ in "ok" }
        router.get("/v1/models") { _, _ in
            Self.json(["object": "list", "data": [["id": "scripted", "object": "model", "type": "model", "display_name": "Scripted model"]]])
        }
        router.post("/v1/messages/count_tokens") { request, _ in
            let body = try await Self.body(request)
            return Self.json(["input_tokens": .number(Double(max(1, body.jsonText.utf8.count / 4)))])
        }
        router.post("/v1/messages") { request, _ in
            let body = try await Self.body(request)
            let turn = player.answer(lastUserText: AnthropicFormat.lastUserText(body), offersTools: Self.offersTools(body))
            logger.info(
                "messages",
                metadata: [
                    "turn": "\(turn.text ?? "")", "tools": "\(turn.toolCalls?.map(\.name) ?? [])", "offered": "\(Self.toolNames(body))",
                    "content": "\(Self.lastUserContentKinds(body))",
                ])
            try await Self.delay(turn)
            let model = body["model"]?.stringValue ?? "scripted"
            if body["stream"] == .bool(true) { return Self.sse(AnthropicFormat.events(turn, model: model)) }
            return Self.json(AnthropicFormat.message(turn, model: model))
        }
        router.post("/v1/chat/completions") { request, _ in
            let body = try await Self.body(request)
            let turn = player.answer(lastUserText: ChatFormat.lastUserText(body), offersTools: Self.offersTools(body))
            try await Self.delay(turn)
            let model = body["model"]?.stringValue ?? "scripted"
            if body["stream"] == .bool(true) {
                return Self.sse(ChatFormat.chunks(turn, model: model, usage: body["stream_options"]?["include_usage"] == .bool(true)), done: true)
            }
            return Self.json(ChatFormat.completion(turn, model: model))
        }
        router.post("/v1/responses") { request, _ in
            let body = try await Self.body(request)
            let turn = player.answer(lastUserText: ResponsesFormat.lastUserText(body), offersTools: Self.offersTools(body))
            logger.info("responses", metadata: ["turn": "\(turn.text ?? "")", "tools": "\(turn.toolCalls?.map(\.name) ?? [])", "offered": "\(Self.toolNames(body))"])
            try await Self.delay(turn)
            let model = body["model"]?.stringValue ?? "scripted"
            if body["stream"] == .bool(true) { return Self.sse(ResponsesFormat.events(turn, model: model)) }
            return Self.json(ResponsesFormat.response(turn, model: model))
        }
        return router
    }

    /// The names of the tools a request offers (for the log: what a script may call).
    /// The kinds of the blocks of the last user message (`text`, `image`, ...), for the log: what an agent sent on.
    static func lastUserContentKinds(_ body: JSONValue) -> [String] {
        guard case .array(let messages)? = body["messages"],
            let last = messages.last(where: { $0["role"] == "user" }),
            case .array(let blocks)? = last["content"]
        else { return [] }
        return blocks.compactMap { $0["type"]?.stringValue }
    }

    static func toolNames(_ body: JSONValue) -> [String] {
        guard case .array(let tools)? = body["tools"] else { return [] }
        return tools.compactMap { $0["name"]?.stringValue ?? $0["function"]?["name"]?.stringValue ?? $0["type"]?.stringValue }
    }

    static func offersTools(_ body: JSONValue) -> Bool {
        if case .array(let tools)? = body["tools"], !tools.isEmpty { return true }
        // Newer Responses clients (Codex) may send their tools as an input item instead.
        if case .array(let items)? = body["input"] { return items.contains { $0["type"] == "additional_tools" } }
        return false
    }

    static func body(_ request: Request) async throws -> JSONValue {
        let buffer = try await request.body.collect(upTo: 64 << 20)
        do {
            return try JSONValue.parse(buffer.readableBytesView)
        } catch {
            throw HTTPError(.badRequest, message: "the body is not JSON: \(error)")
        }
    }

    static func delay(_ turn: ModelScript.Turn) async throws {
        if let delay = turn.delayMs, delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
    }

    static func json(_ value: JSONValue) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: value.jsonBytes)))
    }

    /// Server-Sent Events: `event:` names (when given) and one JSON object per `data:` line.
    static func sse(_ events: [(name: String?, data: JSONValue)], done: Bool = false) -> Response {
        var buffer = ByteBuffer()
        for event in events {
            if let name = event.name { buffer.writeString("event: \(name)\n") }
            buffer.writeString("data: ")
            buffer.writeBytes(event.data.jsonBytes)
            buffer.writeString("\n\n")
        }
        if done { buffer.writeString("data: [DONE]\n\n") }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: .init(byteBuffer: buffer))
    }

    /// `text` in a few pieces, as a model streams it.
    static func pieces(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        for character in text {
            current.append(character)
            if character == " ", current.count >= 12 {
                pieces.append(current)
                current = ""
            }
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }

    static func text(of content: JSONValue?) -> String {
        switch content {
        case .string(let text)?: return text
        case .array(let blocks)?:
            return blocks.compactMap { block -> String? in
                guard let type = block["type"]?.stringValue, ["text", "input_text"].contains(type) else { return nil }
                return block["text"]?.stringValue
            }.joined(separator: "\n")
        default: return ""
        }
    }
}

/// The Anthropic Messages API (what Claude Code speaks).
enum AnthropicFormat {
    static func lastUserText(_ body: JSONValue) -> String {
        guard case .array(let messages)? = body["messages"] else { return "" }
        for message in messages.reversed() where message["role"]?.stringValue == "user" {
            let text = ModelServer.text(of: message["content"])
            if !text.isEmpty { return text }
        }
        return ""
    }

    static func blocks(_ turn: ModelScript.Turn) -> [JSONValue] {
        var blocks: [JSONValue] = []
        if let text = turn.text { blocks.append(["type": "text", "text": .string(text)]) }
        for (index, call) in (turn.toolCalls ?? []).enumerated() {
            blocks.append(["type": "tool_use", "id": .string("toolu_\(UUID().uuidString.prefix(8).lowercased())\(index)"), "name": .string(call.name), "input": call.input])
        }
        return blocks
    }

    static func stopReason(_ turn: ModelScript.Turn) -> String { (turn.toolCalls ?? []).isEmpty ? "end_turn" : "tool_use" }

    static func message(_ turn: ModelScript.Turn, model: String) -> JSONValue {
        [
            "id": .string("msg_\(UUID().uuidString.prefix(12).lowercased())"), "type": "message", "role": "assistant", "model": .string(model),
            "content": .array(blocks(turn)), "stop_reason": .string(stopReason(turn)), "stop_sequence": nil,
            "usage": ["input_tokens": 10, "output_tokens": 10],
        ]
    }

    static func events(_ turn: ModelScript.Turn, model: String) -> [(name: String?, data: JSONValue)] {
        var events: [(name: String?, data: JSONValue)] = []
        var start = message(ModelScript.Turn(), model: model)
        if case .object(var fields) = start {
            fields["content"] = .array([])
            fields["stop_reason"] = nil
            start = .object(fields)
        }
        events.append(("message_start", ["type": "message_start", "message": start]))
        for (index, block) in blocks(turn).enumerated() {
            let position = JSONValue.number(Double(index))
            if block["type"]?.stringValue == "text" {
                events.append(("content_block_start", ["type": "content_block_start", "index": position, "content_block": ["type": "text", "text": ""]]))
                for piece in ModelServer.pieces(block["text"]?.stringValue ?? "") {
                    events.append(
                        ("content_block_delta", ["type": "content_block_delta", "index": position, "delta": ["type": "text_delta", "text": .string(piece)]]))
                }
            } else {
                events.append(
                    ("content_block_start",
                     ["type": "content_block_start", "index": position,
                      "content_block": ["type": "tool_use", "id": block["id"] ?? nil, "name": block["name"] ?? nil, "input": .object([:])]]))
                events.append(
                    ("content_block_delta",
                     ["type": "content_block_delta", "index": position,
                      "delta": ["type": "input_json_delta", "partial_json": .string((block["input"] ?? .object([:])).jsonText)]]))
            }
            events.append(("content_block_stop", ["type": "content_block_stop", "index": position]))
        }
        events.append(
            ("message_delta", ["type": "message_delta", "delta": ["stop_reason": .string(stopReason(turn)), "stop_sequence": nil], "usage": ["output_tokens": 10]]))
        events.append(("message_stop", ["type": "message_stop"]))
        return events
    }
}

/// OpenAI Chat Completions.
enum ChatFormat {
    static func lastUserText(_ body: JSONValue) -> String {
        guard case .array(let messages)? = body["messages"] else { return "" }
        for message in messages.reversed() where message["role"]?.stringValue == "user" {
            return ModelServer.text(of: message["content"])
        }
        return ""
    }

    static func toolCalls(_ turn: ModelScript.Turn) -> [JSONValue] {
        (turn.toolCalls ?? []).enumerated().map { index, call in
            ["index": .number(Double(index)), "id": .string("call_\(UUID().uuidString.prefix(8).lowercased())"), "type": "function",
             "function": ["name": .string(call.name), "arguments": .string(call.input.jsonText)]]
        }
    }

    static func finish(_ turn: ModelScript.Turn) -> String { (turn.toolCalls ?? []).isEmpty ? "stop" : "tool_calls" }

    static func completion(_ turn: ModelScript.Turn, model: String) -> JSONValue {
        var message: [String: JSONValue] = ["role": "assistant", "content": turn.text.map(JSONValue.string) ?? nil]
        let calls = toolCalls(turn)
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        return [
            "id": .string("chatcmpl-\(UUID().uuidString.prefix(12).lowercased())"), "object": "chat.completion", "created": .number(Date().timeIntervalSince1970.rounded()),
            "model": .string(model), "choices": [["index": 0, "message": .object(message), "finish_reason": .string(finish(turn))]],
            "usage": ["prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20],
        ]
    }

    /// With `usage` (the request's `stream_options.include_usage`), a last chunk with no choices carries the usage.
    static func chunks(_ turn: ModelScript.Turn, model: String, usage: Bool = false) -> [(name: String?, data: JSONValue)] {
        let id = JSONValue.string("chatcmpl-\(UUID().uuidString.prefix(12).lowercased())")
        func chunk(_ delta: JSONValue, finish: String? = nil) -> (name: String?, data: JSONValue) {
            (nil, ["id": id, "object": "chat.completion.chunk", "created": 0, "model": .string(model),
                   "choices": [["index": 0, "delta": delta, "finish_reason": finish.map(JSONValue.string) ?? nil]]])
        }
        var chunks = [chunk(["role": "assistant", "content": ""])]
        for piece in ModelServer.pieces(turn.text ?? "") { chunks.append(chunk(["content": .string(piece)])) }
        for call in toolCalls(turn) { chunks.append(chunk(["tool_calls": [call]])) }
        chunks.append(chunk(.object([:]), finish: finish(turn)))
        if usage {
            chunks.append(
                (nil, ["id": id, "object": "chat.completion.chunk", "created": 0, "model": .string(model), "choices": [],
                       "usage": ["prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20]]))
        }
        return chunks
    }
}

/// The OpenAI Responses API (what Codex speaks).
enum ResponsesFormat {
    static func lastUserText(_ body: JSONValue) -> String {
        if let text = body["input"]?.stringValue { return text }
        guard case .array(let items)? = body["input"] else { return "" }
        for item in items.reversed() where item["role"]?.stringValue == "user" {
            let text = ModelServer.text(of: item["content"])
            if !text.isEmpty { return text }
        }
        return ""
    }

    static func items(_ turn: ModelScript.Turn) -> [JSONValue] {
        var items: [JSONValue] = []
        if let text = turn.text {
            items.append(
                ["type": "message", "id": .string("msg_\(UUID().uuidString.prefix(8).lowercased())"), "role": "assistant", "status": "completed",
                 "content": [["type": "output_text", "text": .string(text), "annotations": []]]])
        }
        for call in turn.toolCalls ?? [] {
            var item: [String: JSONValue] = [
                "type": "function_call", "id": .string("fc_\(UUID().uuidString.prefix(8).lowercased())"),
                "call_id": .string("call_\(UUID().uuidString.prefix(8).lowercased())"), "name": .string(call.name),
                "arguments": .string(call.input.jsonText), "status": "completed",
            ]
            if let namespace = call.namespace { item["namespace"] = .string(namespace) }
            items.append(.object(item))
        }
        return items
    }

    static func response(_ turn: ModelScript.Turn, model: String, id: String? = nil, output: [JSONValue]? = nil) -> JSONValue {
        [
            "id": .string(id ?? "resp_\(UUID().uuidString.prefix(12).lowercased())"), "object": "response", "created_at": .number(Date().timeIntervalSince1970.rounded()),
            "status": "completed", "model": .string(model), "output": .array(output ?? items(turn)),
            "usage": ["input_tokens": 10, "output_tokens": 10, "total_tokens": 20, "input_tokens_details": ["cached_tokens": 0], "output_tokens_details": ["reasoning_tokens": 0]],
        ]
    }

    static func events(_ turn: ModelScript.Turn, model: String) -> [(name: String?, data: JSONValue)] {
        let id = "resp_\(UUID().uuidString.prefix(12).lowercased())"
        var inProgress = response(turn, model: model, id: id, output: [])
        if case .object(var fields) = inProgress {
            fields["status"] = "in_progress"
            inProgress = .object(fields)
        }
        var events: [(name: String?, data: JSONValue)] = [("response.created", ["type": "response.created", "response": inProgress])]
        let output = items(turn)
        for (index, item) in output.enumerated() {
            let position = JSONValue.number(Double(index))
            if item["type"]?.stringValue == "message" {
                var started = item
                if case .object(var fields) = started {
                    fields["status"] = "in_progress"
                    fields["content"] = []
                    started = .object(fields)
                }
                events.append(("response.output_item.added", ["type": "response.output_item.added", "output_index": position, "item": started]))
                events.append(
                    ("response.content_part.added",
                     ["type": "response.content_part.added", "item_id": item["id"] ?? nil, "output_index": position, "content_index": 0,
                      "part": ["type": "output_text", "text": "", "annotations": []]]))
                for piece in ModelServer.pieces(turn.text ?? "") {
                    events.append(
                        ("response.output_text.delta",
                         ["type": "response.output_text.delta", "item_id": item["id"] ?? nil, "output_index": position, "content_index": 0, "delta": .string(piece)]))
                }
                events.append(
                    ("response.output_text.done",
                     ["type": "response.output_text.done", "item_id": item["id"] ?? nil, "output_index": position, "content_index": 0, "text": .string(turn.text ?? "")]))
            } else {
                events.append(("response.output_item.added", ["type": "response.output_item.added", "output_index": position, "item": item]))
            }
            events.append(("response.output_item.done", ["type": "response.output_item.done", "output_index": position, "item": item]))
        }
        events.append(("response.completed", ["type": "response.completed", "response": response(turn, model: model, id: id, output: output)]))
        return events
    }
}
