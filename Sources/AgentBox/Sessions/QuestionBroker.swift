import AgentBoxACP
import AgentBoxAPI
import Foundation

/// A session's questions to its user: the agent's `session/elicitation` requests (ACP's form elicitation), recorded
/// as `question` events and answered by the client's reply (``answer(_:_:)``), by the timeout, or with `cancel` when
/// the turn is cancelled or ends or the agent exits. Never a hang: every question ends with a `question_reply` event.
actor QuestionBroker {
    nonisolated let sessionId: String
    private let transcript: TranscriptWriter
    private let timeout: Duration
    private var pending = PendingReplies<Pending, JSONValue>()
    /// The turn was cancelled: new questions are answered `cancel` until the next turn.
    private var refusing = false

    /// Who answered a question, as `question_reply` names it.
    enum Answerer: String, Sendable {
        case client, timeout, cancel, turnEnd, agentExit, storeFailure
    }

    private struct Pending: Sendable {
        let validator: JSONSchemaValidator?
        /// The one property of the schema, when it has exactly one (a bare answer fills it).
        let soleProperty: String?
    }

    /// The most questions waiting at once in a session; more are answered `cancel` at once.
    static let maxPending = 16

    init(sessionId: String, transcript: TranscriptWriter, timeout: Duration) {
        self.sessionId = sessionId
        self.transcript = transcript
        self.timeout = timeout
    }

    /// The questions waiting for an answer.
    var waiting: [String] { pending.openIDs }

    /// Answers the agent's `session/elicitation`: records the question, waits for the client (or the timeout), and
    /// returns ACP's `{action, content?}`.
    func ask(_ params: JSONValue?) async throws -> JSONValue {
        guard let message = params?["message"]?.stringValue, !message.isEmpty, message.utf8.count <= 64 << 10 else {
            throw JSONRPCError.invalidParams("message: a question of 1 byte to 64 KiB")
        }
        let schema = params?["requestedSchema"]
        var validator: JSONSchemaValidator?
        var soleProperty: String?
        if let schema, schema != .null {
            do {
                validator = try JSONSchemaValidator(schema: schema)
            } catch {
                throw JSONRPCError.invalidParams("requestedSchema: \(error.detail)")
            }
            if case .object(let properties)? = schema["properties"], properties.count == 1 { soleProperty = properties.keys.first }
        }
        let questionId = RandomID.make(prefix: "q_", length: 12)
        var payload: [String: JSONValue] = ["questionId": .string(questionId), "message": .string(message)]
        for field in ["requestedSchema", "mode", "url"] {
            if let value = params?[field], value != .null { payload[field] = value }
        }
        if refusing || pending.count >= Self.maxPending {
            await transcript.append(.agent, "question", .object(payload))
            return await record(questionId, action: "cancel", content: nil, by: .cancel)
        }
        // Open for an answer before anyone can read the question: whoever reads it may answer at once.
        pending.register(questionId, Pending(validator: validator, soleProperty: soleProperty))
        let seq = await transcript.append(.agent, "question", .object(payload))
        // Stored before anyone can answer; a question that cannot be stored is not asked.
        var stored = false
        if let seq { stored = await transcript.waitUntilDurable(seq) }
        if !stored { await finish(questionId, action: "cancel", content: nil, by: .storeFailure) }
        let timeout = timeout
        return await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do { try await Task.sleep(for: timeout) } catch { return }
                await self.finish(questionId, action: "cancel", content: nil, by: .timeout)
            }
            let answer = await withCheckedContinuation { continuation in
                pending.attach(questionId, continuation)
            }
            group.cancelAll()
            return answer
        }
    }

    /// The client's reply to `questionId`: `accept` with `answer` (an object for the schema's properties, or a bare
    /// value for a schema of one property), `decline` or `cancel`. Throws `notFound` when no such question waits,
    /// `invalidArgument` when the answer does not fit the question's schema.
    func answer(_ questionId: String, _ reply: QuestionReplyRequest) async throws {
        guard let question = pending.open(questionId) else {
            throw AgentBoxError(.notFound, "no pending question '\(questionId.prefix(40))' in session '\(sessionId)'")
        }
        let action = reply.action ?? .accept
        var content: JSONValue?
        if action == .accept {
            guard let answer = reply.answer else { throw AgentBoxError(.invalidArgument, "answer: required to accept (or reply with action decline)") }
            if case .object = answer {
                content = answer
            } else if let property = question.soleProperty {
                content = .object([property: answer])
            } else if question.validator == nil {
                content = ["answer": answer]
            } else {
                throw AgentBoxError(.invalidArgument, "answer: an object with the question's fields")
            }
            if let validator = question.validator, let content {
                let violations = validator.violations(of: content)
                if !violations.isEmpty {
                    throw AgentBoxError(
                        .invalidArgument, "answer does not fit the question: " + violations.prefix(5).map { "\($0)" }.joined(separator: "; "))
                }
            }
        }
        await finish(questionId, action: action.rawValue, content: content, by: .client)
    }

    /// Answers every waiting question `cancel`.
    func cancelAll(by: Answerer) async {
        for questionId in pending.openIDs { await finish(questionId, action: "cancel", content: nil, by: by) }
    }

    /// From now until ``acceptQuestions()``, questions are answered `cancel` at once (the turn is cancelled).
    func refuseQuestions() { refusing = true }

    func acceptQuestions() { refusing = false }

    private func finish(_ questionId: String, action: String, content: JSONValue?, by: Answerer) async {
        guard pending.close(questionId) else { return }
        pending.finish(questionId, with: await record(questionId, action: action, content: content, by: by))
    }

    /// Records the reply (`question_timeout` first when it timed out) and returns it in ACP's form.
    @discardableResult
    private func record(_ questionId: String, action: String, content: JSONValue?, by: Answerer) async -> JSONValue {
        if by == .timeout {
            await transcript.append(
                .server, "question_timeout", ["questionId": .string(questionId), "afterMs": .number(Double(timeout / .milliseconds(1)))])
        }
        var reply: [String: JSONValue] = ["questionId": .string(questionId), "action": .string(action), "by": .string(by.rawValue)]
        if let content { reply["content"] = content }
        await transcript.append(by == .client ? .client : .server, "question_reply", .object(reply))
        var answer: [String: JSONValue] = ["action": .string(action)]
        if let content { answer["content"] = content }
        return .object(answer)
    }
}
