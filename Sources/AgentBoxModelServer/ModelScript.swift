import AgentBoxAPI
import Foundation
import Synchronization

/// What a scripted model answers, turn after turn: the offline stand-in for Anthropic's and OpenAI's APIs that lets
/// a real Claude Code or Codex complete turns with tool use, with no network and no key.
///
/// ```json
/// {"turns": [
///   {"text": "I will write the file.", "toolCalls": [{"name": "Write", "input": {"file_path": "/workspace/a.txt", "content": "hi"}}]},
///   {"toolCalls": [{"name": "Bash", "input": {"command": "cat /workspace/a.txt"}}]},
///   {"text": "Done."}
/// ]}
/// ```
///
/// Each request of an agent's main loop (one that offers the model tools) takes the next turn; when the script is
/// used up, the answer is `finalText`. Requests that offer no tools (titles, summaries, quota checks that agents make
/// on the side) are answered with `sideText` and take no turn. A turn whose `match` is set is taken only when the
/// request's last user text contains it; turns are searched from the current one on.
public struct ModelScript: Codable, Sendable, Equatable {
    public struct ToolCall: Codable, Sendable, Equatable {
        public var name: String
        public var input: JSONValue
        /// The Responses API's tool namespace, for a tool offered inside one: Codex offers each MCP server's tools
        /// as namespace `mcp__SERVER`, each under its own name.
        public var namespace: String?
        public init(name: String, input: JSONValue, namespace: String? = nil) {
            self.name = name
            self.input = input
            self.namespace = namespace
        }
    }

    public struct Turn: Codable, Sendable, Equatable {
        public var match: String?
        public var text: String?
        public var toolCalls: [ToolCall]?
        /// Milliseconds to wait before answering (to exercise cancel).
        public var delayMs: Int?
        public init(match: String? = nil, text: String? = nil, toolCalls: [ToolCall]? = nil, delayMs: Int? = nil) {
            self.match = match
            self.text = text
            self.toolCalls = toolCalls
            self.delayMs = delayMs
        }
    }

    public var turns: [Turn]
    public var finalText: String?
    public var sideText: String?

    public init(turns: [Turn], finalText: String? = nil, sideText: String? = nil) {
        self.turns = turns
        self.finalText = finalText
        self.sideText = sideText
    }

    /// Reads a script file; the error names what is wrong.
    public static func load(path: String) throws -> ModelScript {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            return try JSONDecoder().decode(ModelScript.self, from: data)
        } catch {
            throw ModelScriptError(message: "\(path) is not a model script: \(error)")
        }
    }
}

public struct ModelScriptError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// The script's progress, shared by every request.
public final class ModelScriptPlayer: Sendable {
    public let script: ModelScript
    private let state = Mutex<(next: Int, served: Int)>((0, 0))

    public init(script: ModelScript) { self.script = script }

    /// The turn that answers a request whose last user text is `lastUserText`; `offersTools` tells a main-loop
    /// request from a side request.
    public func answer(lastUserText: String, offersTools: Bool) -> ModelScript.Turn {
        guard offersTools else { return ModelScript.Turn(text: script.sideText ?? "OK") }
        return state.withLock { state in
            state.served += 1
            var index = state.next
            while index < script.turns.count {
                let turn = script.turns[index]
                if let match = turn.match, !lastUserText.contains(match) {
                    index += 1
                    continue
                }
                state.next = index + 1
                return turn
            }
            return ModelScript.Turn(text: script.finalText ?? "The script has no more turns.")
        }
    }

    /// How many main-loop requests were answered.
    public var served: Int { state.withLock { $0.served } }
}
