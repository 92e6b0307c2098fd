import AgentBoxACP
import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import Crypto
import Foundation
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
        if let server = settings.acpServer { throw AgentBoxError(.conflict, "session '\(id)' is ACP server '\(server)': its client drives it over /v1/acp") }
        guard record.state != "closed" else { throw AgentBoxError(.conflict, "session '\(id)' is closed; resume it first") }
        guard !turnState.isBusy else { throw AgentBoxError(.conflict, "a turn is already running in session '\(id)'; cancel it or wait") }
        guard !restarting else { throw AgentBoxError(.conflict, "session '\(id)'s agent is starting again with new env; try again in a moment") }
        guard (1...64).contains(request.content.count) else { throw AgentBoxError(.invalidArgument, "content must hold 1...64 blocks") }
        try Self.check(request.content)
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
        // A model or mode set during the last turn takes effect now (a refusal is in the transcript).
        try? await connection.apply(model: settings.model, mode: settings.mode, agentSessionId: record.agentSessionId ?? "")
        cancelRequested.lower()
        turnFailure = nil
        await permissions.acceptRequests()
        await questions.acceptQuestions()
        // Attachments, in the forms the agent said it takes (ACP's promptCapabilities).
        let prompt: [JSONValue], recorded: [JSONValue]
        do {
            (prompt, recorded) = try await blocks(request.content, capabilities: await connection.promptCapabilities)
        } catch {
            await runtime.endActivity(activity)
            turnState.apply(.abandon)
            throw error
        }
        var sent = prompt, stored = recorded
        if let context = pendingContext {
            sent.insert(["type": "text", "text": .string(context)], at: 0)
            stored.insert(["type": "text", "text": .string(context)], at: 0)
            pendingContext = nil
        }
        let params: JSONValue = ["sessionId": .string(record.agentSessionId ?? ""), "prompt": .array(sent)]
        // The transcript keeps an image's size and digest, not its bytes.
        await append(.client, "prompt", ["sessionId": .string(record.agentSessionId ?? ""), "prompt": .array(stored)])
        record.state = "running"
        record.stopReason = nil
        await persist()
        turnState.apply(.start)
        let task = Task { await self.runTurn(link, params: params, activity: activity) }
        turn = task
        return task
    }

    /// Adds the tokens an agent reported for a turn (ACP's `usage`: `inputTokens`, `outputTokens`,
    /// `cachedReadTokens`, `cachedWriteTokens`) to the session's; stored with the turn's end.
    func addAgentUsage(_ usage: JSONValue?) {
        guard let usage, case .object = usage else { return }
        func count(_ name: String) -> Int64 {
            guard case .number(let value)? = usage[name], value.isFinite, value >= 0, value < 1e15 else { return 0 }
            return Int64(value)
        }
        var total = settings.agentUsage ?? LLMUsageFigures()
        total.requests += 1
        total.inputTokens += count("inputTokens")
        total.outputTokens += count("outputTokens")
        total.cacheReadTokens += count("cachedReadTokens")
        total.cacheWriteTokens += count("cachedWriteTokens")
        settings.agentUsage = total
    }

    /// The largest prompt body (images travel base64 in it).
    public static let maxPromptBytes = 16 << 20
    /// The largest image of a prompt, decoded.
    static let maxImageBytes = 10 << 20
    /// The largest workspace file a prompt attaches.
    static let maxFileBytes = 1 << 20
    static let imageTypes: Set<String> = ["image/png", "image/jpeg", "image/gif", "image/webp"]

    /// Refuses malformed blocks before anything starts.
    static func check(_ content: [PromptContent]) throws {
        for (index, block) in content.enumerated() {
            switch block.type {
            case "text":
                guard block.text != nil else { throw AgentBoxError(.invalidArgument, "content[\(index)]: a text block needs its text") }
            case "image":
                guard let mimeType = block.mimeType, imageTypes.contains(mimeType) else {
                    throw AgentBoxError(.invalidArgument, "content[\(index)]: an image's mimeType is one of \(imageTypes.sorted().joined(separator: ", "))")
                }
                guard let data = block.data, let bytes = Data(base64Encoded: data), !bytes.isEmpty else {
                    throw AgentBoxError(.invalidArgument, "content[\(index)]: an image's data is its bytes in base64")
                }
                guard bytes.count <= maxImageBytes else {
                    throw AgentBoxError(.tooLarge, "content[\(index)]: an image has at most \(maxImageBytes >> 20) MiB")
                }
            case "file":
                guard let path = block.path else { throw AgentBoxError(.invalidArgument, "content[\(index)]: a file block needs its path") }
                _ = try WorkspacePath(path)
            default:
                throw AgentBoxError(.invalidArgument, "content[\(index)]: type is text, image or file, not '\(block.type.prefix(40))'")
            }
        }
    }

    /// The prompt's blocks as the agent gets them, and as the transcript keeps them. An image goes as ACP's `image`
    /// block when the agent takes images (else `invalidArgument`); a workspace file as an embedded `resource` (its
    /// text, or its bytes as a base64 blob) when the agent takes embedded context, else as a `resource_link`, which
    /// every ACP agent takes.
    private func blocks(_ content: [PromptContent], capabilities: JSONValue) async throws -> (sent: [JSONValue], stored: [JSONValue]) {
        var sent: [JSONValue] = [], stored: [JSONValue] = []
        for block in content {
            switch block.type {
            case "image":
                guard capabilities["image"] == .bool(true) else {
                    throw AgentBoxError(.invalidArgument, "the agent '\(record.agent)' does not take images (its promptCapabilities say so)")
                }
                let bytes = Data(base64Encoded: block.data ?? "") ?? Data()
                sent.append(["type": "image", "mimeType": .string(block.mimeType ?? ""), "data": .string(block.data ?? "")])
                stored.append([
                    "type": "image", "mimeType": .string(block.mimeType ?? ""), "bytes": .number(Double(bytes.count)),
                    "sha256": .string(SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()),
                ])
            case "file":
                let path = try WorkspacePath(block.path ?? "")
                let uri = "file://" + path.description
                let name = path.components.last ?? path.description
                guard capabilities["embeddedContext"] == .bool(true) else {
                    let link: JSONValue = ["type": "resource_link", "uri": .string(uri), "name": .string(name)]
                    sent.append(link)
                    stored.append(link)
                    continue
                }
                let bytes = try await workspaceAccess.attachment(path, limit: Self.maxFileBytes)
                var resource: [String: JSONValue] = ["uri": .string(uri)]
                if let text = String(validating: bytes, as: UTF8.self) {
                    resource["text"] = .string(text)
                    resource["mimeType"] = "text/plain"
                } else {
                    resource["blob"] = .string(Data(bytes).base64EncodedString())
                    resource["mimeType"] = "application/octet-stream"
                }
                sent.append(["type": "resource", "resource": .object(resource)])
                stored.append(["type": "resource", "resource": ["uri": .string(uri), "bytes": .number(Double(bytes.count))]])
            default:
                let text: JSONValue = ["type": "text", "text": .string(block.text ?? "")]
                sent.append(text)
                stored.append(text)
            }
        }
        return (sent, stored)
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
                addAgentUsage(answer["usage"])
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
        await questions.cancelAll(by: .turnEnd)
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

    /// Cancels the running turn: the agent is told (`session/cancel`), pending permission requests and questions are
    /// answered `cancelled`, the commands it runs in its terminals are stopped (TERM, KILL 2 s later), and the turn
    /// ends with `cancelled`. An agent that has not ended it after ``AgentBoxConfiguration/cancelGrace`` is stopped.
    /// Nothing happens when no turn runs.
    public func cancel() async {
        guard turnState == .running, let link = await connection.current, turnState.apply(.cancel) else { return }
        await permissions.refuseRequests()
        await questions.refuseQuestions()
        let agentSessionId = record.agentSessionId ?? ""
        await append(.client, "cancel", ["sessionId": .string(agentSessionId)])
        try? await link.connection.notify(ACP.Method.cancel, params: ["sessionId": .string(agentSessionId)])
        await permissions.cancelAll(by: .cancel)
        await questions.cancelAll(by: .cancel)
        cancelRequested.raise("cancelled by the client")
        // Not awaited: the cancel answers at once; the commands end within the grace.
        let access = workspaceAccess
        Task { await access.stopTerminalCommands() }
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
