import AgentBoxACP
import AgentBoxAPI

/// A session's permission questions: the agent's `session/request_permission` requests, decided by the session's
/// policy or asked of the client, and answered by its reply, by the timeout, or with `cancelled` when the turn is
/// cancelled or ends or the agent exits.
///
/// Every request and every answer is recorded in the transcript; a question is published (``announce``) only once
/// its request is stored, so whoever is asked can read it back.
actor PermissionBroker {
    nonisolated let sessionId: String
    private let transcript: TranscriptWriter
    /// Tells the client a question waits for its reply (the workspace's `permissionRequest` event).
    private let announce: @Sendable (PermissionRequestNotice) async -> Void
    private var pending = PendingReplies<Pending, ACP.RequestPermissionResult>()
    /// The turn was cancelled: new requests are answered `cancelled` until the next turn.
    private var refusing = false

    /// Who answered a request, as the transcript's `permission_reply` names it.
    enum Answerer: String, Sendable {
        case client, policy, always, timeout, cancel, turnEnd, agentExit
        /// The request could not be stored, so it could not be asked.
        case storeFailure
    }

    private struct Pending: Sendable {
        let options: [ACP.PermissionOption]
        let toolCall: JSONValue
        let kind: String?
    }

    init(sessionId: String, transcript: TranscriptWriter, announce: @escaping @Sendable (PermissionRequestNotice) async -> Void) {
        self.sessionId = sessionId
        self.transcript = transcript
        self.announce = announce
    }

    /// The requests waiting for a reply.
    var notices: [PermissionRequestNotice] {
        pending.openIDs.compactMap { id in
            pending.open(id).map { pending in
                PermissionRequestNotice(sessionId: sessionId, permissionId: id, toolCall: pending.toolCall, options: pending.options.compactMap { try? ACP.json($0) })
            }
        }
    }

    /// Answers the agent's `session/request_permission`: by `policy`, at once as allowed when the tool kind is in
    /// `alwaysAllowed`, or by asking; returns when it is answered.
    func request(_ params: JSONValue?, policy: PermissionPolicy, alwaysAllowed: [String]) async throws -> JSONValue {
        let request = try ACP.decode(ACP.RequestPermissionParams.self, from: params)
        let permissionId = RandomID.make(prefix: "perm_", length: 12)
        let kind = request.toolCall["kind"]?.stringValue
        let options = try ACP.json(request.options)
        let event: JSONValue = [
            "permissionId": .string(permissionId), "sessionId": .string(request.sessionId), "toolCall": request.toolCall, "options": options,
        ]
        var decision = policy.decision(for: kind)
        let remembered = kind.map { alwaysAllowed.contains($0) } ?? false
        if remembered { decision = .allow }
        if refusing {
            await transcript.append(.agent, "permission_request", event)
            await transcript.append(.server, "permission_reply", ["permissionId": .string(permissionId), "outcome": "cancelled", "by": "cancel"])
            return try ACP.json(ACP.RequestPermissionResult.cancelled)
        }
        switch decision {
        case .allow, .reject:
            await transcript.append(.agent, "permission_request", event)
            let reply: PermissionReply = decision == .allow ? (remembered ? .always : .once) : .reject
            let outcome = Self.outcome(for: reply, options: request.options) ?? .cancelled
            await record(permissionId, outcome: outcome, reply: reply, by: remembered ? .always : .policy)
            return try ACP.json(outcome)
        case .ask:
            // Open for a reply before anyone can read the question: whoever reads it may answer at once.
            pending.register(permissionId, Pending(options: request.options, toolCall: request.toolCall, kind: kind))
            let seq = await transcript.append(.agent, "permission_request", event)
            // Stored before anyone is told; a question that cannot be stored is not asked.
            if let seq, await transcript.waitUntilDurable(seq) {
                if pending.open(permissionId) != nil {
                    await announce(
                        PermissionRequestNotice(
                            sessionId: sessionId, permissionId: permissionId, toolCall: request.toolCall,
                            options: request.options.compactMap { try? ACP.json($0) }))
                }
            } else {
                await answer(permissionId, outcome: .cancelled, reply: nil, by: .storeFailure)
            }
            let timeout = Duration.milliseconds(policy.timeoutMs ?? 300_000)
            let outcome = await withTaskGroup(of: Void.self) { group in
                // The timeout lives as long as the question: answering cancels it.
                group.addTask {
                    do { try await Task.sleep(for: timeout) } catch { return }
                    await self.timedOut(permissionId)
                }
                let outcome = await withCheckedContinuation { continuation in
                    pending.attach(permissionId, continuation)
                }
                group.cancelAll()
                return outcome
            }
            return try ACP.json(outcome)
        }
    }

    /// The answer the client's `reply` gives to `permissionId`, and the request's tool kind. Throws `notFound` when
    /// no such request waits, `conflict` when the agent offered no option to allow it.
    func outcome(of permissionId: String, for reply: PermissionReply) throws -> (outcome: ACP.RequestPermissionResult, kind: String?) {
        guard let pending = pending.open(permissionId) else {
            throw AgentBoxError(.notFound, "no pending permission request '\(permissionId)' in session '\(sessionId)'")
        }
        if let selected = Self.outcome(for: reply, options: pending.options) { return (selected, pending.kind) }
        guard reply == .reject else { throw AgentBoxError(.conflict, "the agent offered no option to allow this tool call; reply reject") }
        return (.cancelled, pending.kind)
    }

    /// Answers `permissionId` with `outcome` (nothing when it is no longer pending).
    func answer(_ permissionId: String, outcome: ACP.RequestPermissionResult, reply: PermissionReply?, by: Answerer) async {
        guard pending.close(permissionId) else { return }
        await record(permissionId, outcome: outcome, reply: reply, by: by)
        pending.finish(permissionId, with: outcome)
    }

    /// Answers every pending request `cancelled`.
    func cancelAll(by: Answerer) async {
        for permissionId in pending.openIDs { await answer(permissionId, outcome: .cancelled, reply: nil, by: by) }
    }

    /// From now until ``acceptRequests()``, requests are answered `cancelled` without asking (the turn is cancelled).
    func refuseRequests() { refusing = true }

    /// Requests are decided and asked again (a new turn starts).
    func acceptRequests() { refusing = false }

    private func timedOut(_ permissionId: String) async {
        guard let pending = pending.open(permissionId) else { return }
        await answer(permissionId, outcome: Self.outcome(for: .reject, options: pending.options) ?? .cancelled, reply: .reject, by: .timeout)
    }

    private func record(_ permissionId: String, outcome: ACP.RequestPermissionResult, reply: PermissionReply?, by: Answerer) async {
        await transcript.append(
            by == .client ? .client : .server, "permission_reply",
            ["permissionId": .string(permissionId), "reply": reply.map { .string($0.rawValue) } ?? .null, "outcome": .string(outcome.outcome.outcome),
             "optionId": outcome.outcome.optionId.map(JSONValue.string) ?? .null, "by": .string(by.rawValue)])
    }

    /// The option that carries out `reply`, as the agent's answer; `nil` when the agent offered none such.
    static func outcome(for reply: PermissionReply, options: [ACP.PermissionOption]) -> ACP.RequestPermissionResult? {
        let preferred: [String] =
            switch reply {
            case .once: ["allow_once", "allow_always"]
            case .always: ["allow_always", "allow_once"]
            case .reject: ["reject_once", "reject_always"]
            }
        for kind in preferred {
            if let option = options.first(where: { $0.kind == kind }) { return .selected(option.optionId) }
        }
        return nil
    }
}
