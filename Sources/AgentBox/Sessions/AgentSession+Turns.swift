import AgentBoxACP
import AgentBoxAPI
import AgentBoxStore
import Logging

/// A session's turns: a prompt starts one, the agent's answer (or its failure, a cancel, the store's failure) ends it.
///
/// ``TurnState`` says which moves are allowed. A running turn is one task that owns, as child tasks, the prompt
/// request to the agent and two watchdogs: one waits for ``cancel()`` and stops an agent that has not ended the
/// turn within ``AgentBoxConfiguration/cancelGrace``; the other waits for the transcript's store to fail and stops
/// the agent, whose output could no longer be recorded. Both end with the turn.
extension AgentSession {
    /// Starts a turn with `request`; the task ends with the turn. Throws `conflict` when a turn runs or the
    /// session is closed, `unavailable` while the store refuses the session's events.
    public func prompt(_ request: PromptRequest) async throws -> Task<PromptResult, Never> {
        try checkOpen()
        guard record.state != "closed" else { throw AgentBoxError(.conflict, "session '\(id)' is closed; resume it first") }
        guard !turnState.isBusy else { throw AgentBoxError(.conflict, "a turn is already running in session '\(id)'; cancel it or wait") }
        guard !request.content.isEmpty else { throw AgentBoxError(.invalidArgument, "content must hold at least one block") }
        for block in request.content where block.type == "text" && block.text == nil {
            throw AgentBoxError(.invalidArgument, "a text block needs its text")
        }
        let blocks = try ACP.json(request.content)
        turnState.apply(.accept)
        let activity: WorkspaceRuntime.Activity
        let link: AgentLink
        do {
            try await transcript.checkWritable()
            activity = try await runtime.beginActivity()
            do {
                link = try await ensureAgent()
            } catch {
                await runtime.endActivity(activity)
                throw error
            }
        } catch {
            turnState.apply(.abandon)
            throw error
        }
        cancelRequested.lower()
        turnFailure = nil
        await permissions.acceptRequests()
        var prompt: [JSONValue] = []
        if case .array(let items) = blocks { prompt = items }
        if let context = pendingContext {
            prompt.insert(["type": "text", "text": .string(context)], at: 0)
            pendingContext = nil
        }
        let params: JSONValue = ["sessionId": .string(record.agentSessionId ?? ""), "prompt": .array(prompt)]
        await append(.client, "prompt", params)
        record.state = "running"
        record.stopReason = nil
        await persist()
        turnState.apply(.start)
        let task = Task { await self.runTurn(link, params: params, activity: activity) }
        turn = task
        return task
    }

    private func runTurn(_ link: AgentLink, params: JSONValue, activity: WorkspaceRuntime.Activity) async -> PromptResult {
        let answer = await withTaskGroup(of: Result<JSONValue, any Error>?.self) { group in
            group.addTask {
                do { return .success(try await link.connection.request(ACP.Method.prompt, params: params)) } catch { return .failure(error) }
            }
            group.addTask {
                await self.enforceCancelGrace(link)
                return nil
            }
            group.addTask {
                await self.stopOnTranscriptFailure(link)
                return nil
            }
            var answer: Result<JSONValue, any Error> = .failure(JSONRPCError.connectionClosed)
            for await outcome in group {
                guard let outcome else { continue }
                answer = outcome
                break
            }
            // The watchdogs end with the turn.
            group.cancelAll()
            return answer
        }
        let cancelled = turnState == .cancelling
        turnState.apply(.finish)
        // What the turn recorded must be stored before its end is: a turn whose events the store refused ends
        // with an error, never with the agent's stop reason over a transcript that lacks them.
        let recorded = await transcript.waitUntilDurable(await transcript.lastSeq)
        var failure: String? = turnFailure
        if failure == nil, !recorded { failure = transcript.failure.reason ?? "the store refused them" }
        var result: PromptResult
        if let failure {
            result = PromptResult(stopReason: "error", error: "the session's events could not be stored")
            // Published only if the store takes it (with everything before it).
            await append(.server, "error", ["message": .string("the session's events could not be stored (\(failure))")])
            await append(.server, "turn_end", ["stopReason": .string(result.stopReason), "error": result.error.map(JSONValue.string) ?? .null])
        } else {
            switch answer {
            case .success(let answer):
                result = PromptResult(stopReason: answer["stopReason"]?.stringValue ?? "end_turn")
                await append(.agent, "turn_end", answer)
            case .failure(let error):
                if cancelled {
                    result = PromptResult(stopReason: "cancelled")
                } else if let rpc = error as? JSONRPCError, rpc != .connectionClosed {
                    await append(.agent, "error", ["code": .number(Double(rpc.code)), "message": .string(rpc.message), "data": rpc.data ?? .null])
                    result = PromptResult(stopReason: "error", error: "the agent failed the turn: \(rpc.message)")
                } else {
                    result = PromptResult(stopReason: "error", error: "the agent exited during the turn")
                }
                await append(.server, "turn_end", ["stopReason": .string(result.stopReason), "error": result.error.map(JSONValue.string) ?? .null])
            }
        }
        await permissions.cancelAll(by: .turnEnd)
        if !(await transcript.waitUntilDurable(await transcript.lastSeq)), result.error == nil {
            result = PromptResult(stopReason: "error", error: "the session's events could not be stored")
        }
        if record.state == "running" { record.state = "idle" }
        record.stopReason = result.stopReason
        await persist()
        turn = nil
        turnState.apply(.settle)
        await runtime.endActivity(activity)
        return result
    }

    /// Cancels the running turn: the agent is told (`session/cancel`), pending permission requests are answered
    /// `cancelled`, and the turn ends with `cancelled`. An agent that has not ended it after
    /// ``AgentBoxConfiguration/cancelGrace`` is stopped. Nothing happens when no turn runs.
    public func cancel() async {
        guard turnState == .running, let link = await connection.current, turnState.apply(.cancel) else { return }
        await permissions.refuseRequests()
        let agentSessionId = record.agentSessionId ?? ""
        await append(.client, "cancel", ["sessionId": .string(agentSessionId)])
        try? await link.connection.notify(ACP.Method.cancel, params: ["sessionId": .string(agentSessionId)])
        await permissions.cancelAll(by: .cancel)
        cancelRequested.raise("cancelled by the client")
    }

    /// Waits for the running turn, if any.
    public func waitForTurn() async -> PromptResult? {
        await turn?.value
    }

    /// The cancel watchdog of the turn on `link`: once the turn is cancelled, the agent has the grace to end it.
    private func enforceCancelGrace(_ link: AgentLink) async {
        guard await cancelRequested.wait() != nil else { return }
        do { try await Task.sleep(for: configuration.cancelGrace) } catch { return }
        guard turnState == .cancelling, await connection.current === link else { return }
        logger.warning("the agent did not end a cancelled turn; stopping it")
        await append(.server, "error", ["message": .string("the agent did not end the cancelled turn within \(configuration.cancelGrace); it was stopped")])
        await link.stop(grace: .zero)
    }

    /// The store watchdog of the turn on `link`: an agent whose output can no longer be stored is stopped, which
    /// ends the turn with an error.
    private func stopOnTranscriptFailure(_ link: AgentLink) async {
        guard let failure = await transcript.failure.wait() else { return }
        turnFailure = failure
        logger.error("the session's events cannot be stored; stopping the agent", metadata: ["error": "\(failure)"])
        await link.stop(grace: .zero)
    }
}
