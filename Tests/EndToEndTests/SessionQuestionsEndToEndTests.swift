import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing

/// An agent's questions to its user (ACP `session/elicitation`), with the mock agent in a real sandbox: a `question`
/// event, answered by value, declined, refused when the answer does not fit, timed out into a clear event, and
/// cancelled with the turn; never a hang.
@Suite("Session questions", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(3)))
struct SessionQuestionsEndToEndTests {
    @Test func answeredDeclinedTimedOutAndCancelled() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--question-timeout", "15s"])
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("ask")
            let id = try await client.createSession("ask", SessionCreateRequest(agent: "mock")).id
            /// Prompts `question`, answers the question with `reply` (none: leaves it), returns the turn's events.
            func ask(_ reply: ((String) async throws -> Void)?) async throws -> [SessionEvent] {
                let before = try await client.session("ask", id).lastEventSeq
                try await client.startPrompt("ask", id, PromptRequest(text: "question please"))
                var events: [SessionEvent] = []
                for try await event in try await client.sessionEvents("ask", id, after: before) {
                    events.append(event)
                    if event.type == "question", let questionId = event.payload["questionId"]?.stringValue, let reply { try await reply(questionId) }
                    if event.type == "turn_end" { break }
                }
                return events
            }
            func said(_ events: [SessionEvent]) -> String {
                events.filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }.joined()
            }

            // Answered with a bare value (the form has one field); bad answers first: 400, and the question still waits.
            let answered = try await ask { questionId in
                let misfit = await #expect(throws: AgentBoxClientError.self) {
                    try await client.answerQuestion("ask", id, questionId, QuestionReplyRequest(answer: ["name": 42]))
                }
                #expect(misfit?.status == 400)
                await #expect(throws: AgentBoxClientError.self) { try await client.answerQuestion("ask", id, questionId, QuestionReplyRequest()) }
                let unknown = await #expect(throws: AgentBoxClientError.self) {
                    try await client.answerQuestion("ask", id, "q_000000000000", QuestionReplyRequest(answer: "x"))
                }
                #expect(unknown?.status == 404)
                try await client.answerQuestion("ask", id, questionId, QuestionReplyRequest(answer: "Ada"))
            }
            let question = try #require(answered.first { $0.type == "question" })
            #expect(question.payload["message"]?.stringValue == "What should I call you?" && question.payload["requestedSchema"] != nil)
            #expect(said(answered).contains("answer: Ada"))
            #expect(answered.contains { $0.type == "question_reply" && $0.payload["action"] == "accept" && $0.payload["by"] == "client" })

            // Declined.
            let declined = try await ask { try await client.answerQuestion("ask", id, $0, QuestionReplyRequest(action: .decline)) }
            #expect(said(declined).contains("question: declined"))

            // Unanswered: it times out into question_timeout, the agent hears cancel, the turn ends.
            let started = ContinuousClock.now
            let unanswered = try await ask(nil)
            #expect(unanswered.contains { $0.type == "question_timeout" } && said(unanswered).contains("question: cancelled"))
            #expect(ContinuousClock.now - started < .seconds(60))

            // Cancelled with the turn.
            let cancelled = try await ask { _ in try await client.cancelTurn("ask", id) }
            #expect(cancelled.contains { $0.type == "question_reply" && $0.payload["by"] == "cancel" })
            #expect(cancelled.last?.payload["stopReason"] == "cancelled", "\(cancelled.last.map { "\($0.payload)" } ?? "")")

            // The CLI answers by value.
            let before = try await client.session("ask", id).lastEventSeq
            try await client.startPrompt("ask", id, PromptRequest(text: "question"))
            var questionId: String?
            for try await event in try await client.sessionEvents("ask", id, after: before) where event.type == "question" {
                questionId = event.payload["questionId"]?.stringValue
                break
            }
            let environment = ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!]
            let cli = try await AgentBoxBinary.run(["session", "answer", "ask", id, try #require(questionId), #"{"name":"Grace"}"#], environment: environment)
            #expect(cli.status == 0, "\(cli.stderr)")
            await server.stop()
        }
    }
}
