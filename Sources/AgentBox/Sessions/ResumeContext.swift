import AgentBoxAPI
import AgentBoxStore

/// The text put before a prompt that the agent has not seen: the session's instructions, and, when a new agent
/// session replaces one the agent lost, the earlier conversation read back from the transcript.
enum ResumeContext {
    static let instructionsMark = "[Instructions]\n"
    static let contextMark = "[Earlier conversation in this session, resumed by AgentBox]\n"

    /// The earlier conversation of session `sessionId` up to `seq` as text for an agent that starts afresh: the
    /// prompts and the agent's messages, the latest `limit` bytes when it is longer.
    static func transcript(of sessionId: String, through seq: Int64, store: any Store, limit: Int) async -> String? {
        var lines: [String] = []
        var size = 0
        var cursor = seq
        // Read backwards in pages until the cap is reached.
        while cursor > 0, size < limit {
            let from = max(0, cursor - 500)
            guard let page = try? await store.sessionEvents(of: sessionId, after: from, limit: Int(cursor - from)) else { break }
            var pageLines: [String] = []
            var message = ""
            for event in page.compactMap(AgentSession.decode) {
                if event.type == "agent_message_chunk", let text = event.payload["update"]?["content"]?["text"]?.stringValue {
                    message += text
                    continue
                }
                if !message.isEmpty {
                    pageLines.append("Agent: \(message)")
                    message = ""
                }
                if event.type == "prompt", case .array(let blocks)? = event.payload["prompt"] {
                    // AgentBox's own blocks (instructions, an earlier context) are not the user's words.
                    let text = blocks.compactMap { $0["text"]?.stringValue }
                        .filter { !$0.hasPrefix(instructionsMark) && !$0.hasPrefix(contextMark) }.joined(separator: "\n")
                    pageLines.append("User: \(text)")
                }
            }
            if !message.isEmpty { pageLines.append("Agent: \(message)") }
            lines.insert(contentsOf: pageLines, at: 0)
            size += pageLines.reduce(0) { $0 + $1.utf8.count + 1 }
            cursor = from
        }
        guard !lines.isEmpty else { return nil }
        var text = lines.joined(separator: "\n")
        if text.utf8.count > limit { text = "…" + String(decoding: text.utf8.suffix(limit), as: UTF8.self) }
        return contextMark + text
    }
}
