import AgentBox
import AgentBoxAPI
import AgentBoxStore
import ChildProcessSupport
import Foundation
import Testing

/// Agent sessions with the mock agent running inside real sandboxes.
@Suite("Agent sessions", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct SessionTests {
    static let noLoadMock = AgentDefinition(id: "mock-noload", name: "mock without session/load", command: ["--no-load"], tool: "mock-agent")

    func withSessions<T>(
        idleGrace: Duration = .seconds(60), configure: @escaping (inout AgentBoxConfiguration) -> Void = { _ in },
        _ body: (WorkspaceManager, URL) async throws -> T
    ) async throws -> T {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, idleGrace: idleGrace) { configuration in
                configuration.agents.append(Self.noLoadMock)
                configuration.agents.append(AgentDefinition(id: "broken", name: "exits at once", command: ["/bin/sh", "-c", "echo no model here >&2; exit 3"]))
                configure(&configuration)
            }
            _ = try await manager.create(key: key("ws"))
            do {
                let result = try await body(manager, directory)
                await manager.shutdown()
                return result
            } catch {
                await manager.shutdown()
                throw error
            }
        }
    }

    /// The whole transcript, page by page.
    func transcript(_ manager: WorkspaceManager, _ id: String) async throws -> [SessionEvent] {
        var events: [SessionEvent] = []
        var after: Int64 = 0
        while true {
            let page = try await manager.sessionEvents(key: key("ws"), id: id, after: after, limit: 7)
            events += page.items
            guard let next = page.nextCursor else { return events }
            after = Int64(next)!
        }
    }

    func text(_ events: [SessionEvent]) -> String {
        events.filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }.joined()
    }

    @Test func aTurnIsRecordedInOrderAndEndsWithItsStopReason() async throws {
        try await withSessions { manager, _ in
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            #expect(session.status == .idle && session.agentRunning && session.agentSessionId == "mock-session-1")
            let result = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "hello plan tool"))
            #expect(result == PromptResult(stopReason: "end_turn"))
            let events = try await transcript(manager, session.id)
            #expect(events.map(\.seq) == Array(1...Int64(events.count)), "seqs are 1, 2, 3, ... without gaps")
            #expect(events.first?.type == "agent_started" && events.last?.type == "turn_end")
            #expect(events.contains { $0.type == "prompt" && $0.sender == .client })
            #expect(text(events) == "hello plan tool")
            let types = events.map(\.type)
            #expect(types.contains("plan") && types.contains("tool_call") && types.filter { $0 == "tool_call_update" }.count == 2)
            let stored = try await manager.session(key: key("ws"), id: session.id)
            #expect(stored.stopReason == "end_turn" && stored.status == .idle && stored.lastEventSeq == Int64(events.count))
            #expect(try await manager.sessions(key: key("ws")).items.map(\.id) == [session.id])
        }
    }

    @Test func theAgentWritesReadsAndRunsCommandsInTheWorkspace() async throws {
        try await withSessions { manager, _ in
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock", permissions: PermissionPolicy(default: .allow)))
            _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "write /workspace/notes.txt from the agent"))
            let written = try await manager.runtime(for: key("ws")).exec(ExecRequest(command: "cat /workspace/notes.txt; stat -c %U /workspace/notes.txt"))
            #expect(written.stdout == "from the agentagent\n")
            _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "read notes.txt"))
            _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "run echo out; echo err >&2; exit 3"))
            let events = try await transcript(manager, session.id)
            #expect(text(events).contains("notes.txt: from the agent"), "a relative path is under /workspace")
            #expect(text(events).contains("ran `echo out; echo err >&2; exit 3`: exit 3, output: out\nerr\n"), "\(text(events))")
            #expect(events.contains { $0.type == "terminal/create" && $0.sender == .agent })
            #expect(events.contains { $0.type == "response" && $0.payload["method"]?.stringValue == "terminal/wait_for_exit" })
        }
    }

    @Test func theAgentCannotReachOutsideTheWorkspace() async throws {
        try await withSessions { manager, _ in
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            _ = try await manager.runtime(for: key("ws")).exec(ExecRequest(command: "ln -s /etc /workspace/etc-link"))
            for path in ["/etc/passwd", "/workspace/../etc/passwd", "/workspace/etc-link/passwd"] {
                let result = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "read \(path)"))
                #expect(result?.stopReason == "error", "reading \(path)")
                let last = try await transcript(manager, session.id).last { $0.type == "response" }
                #expect(last?.payload["error"] != nil, "\(String(describing: last))")
            }
            let escape = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "write /workspace/etc-link/agentbox-owned x"))
            #expect(escape?.stopReason == "error")
            #expect(!FileManager.default.fileExists(atPath: "/etc/agentbox-owned"))
        }
    }

    @Test func permissionsFollowThePolicyTheRepliesAndTheTimeout() async throws {
        try await withSessions { manager, _ in
            let workspaceEvents = try await manager.events(key: key("ws"))
            let asked = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            // Asked: the request reaches the workspace stream once it is stored; the reply decides.
            for (reply, verdict) in [(PermissionReply.once, "approved"), (.reject, "rejected")] {
                let turn = try await manager.loadSession(key: key("ws"), id: asked.id).prompt(PromptRequest(text: "permission"))
                var permissionId: String?
                for await envelope in workspaceEvents {
                    if case .permissionRequest(let notice) = envelope.event, notice.sessionId == asked.id {
                        #expect(notice.toolCall["kind"]?.stringValue == "execute" && notice.options.count == 3)
                        let stored = try await manager.sessionEvents(key: key("ws"), id: asked.id, after: 0, limit: 1000).items
                        #expect(stored.contains { $0.payload["permissionId"]?.stringValue == notice.permissionId }, "stored before it is published")
                        permissionId = notice.permissionId
                        break
                    }
                }
                try await manager.replyPermission(key: key("ws"), id: asked.id, permissionId: permissionId!, reply)
                #expect(await turn.value.stopReason == "end_turn")
                #expect(text(try await transcript(manager, asked.id)).hasSuffix("permission: \(verdict)"))
                await expectCode(.notFound) { try await manager.replyPermission(key: key("ws"), id: asked.id, permissionId: permissionId!, .once) }
            }
            // A policy decides without asking.
            for (decision, verdict) in [(PermissionDecision.allow, "approved"), (.reject, "rejected")] {
                let session = try await manager.createSession(
                    key: key("ws"), SessionCreateRequest(agent: "mock", permissions: PermissionPolicy(rules: ["execute": decision])))
                _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "permission"))
                let events = try await transcript(manager, session.id)
                #expect(text(events).hasSuffix("permission: \(verdict)"))
                #expect(events.contains { $0.type == "permission_reply" && $0.payload["by"]?.stringValue == "policy" })
            }
            // An unanswered question is rejected at the timeout.
            let slow = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock", permissions: PermissionPolicy(timeoutMs: 200)))
            _ = try await manager.prompt(key: key("ws"), id: slow.id, PromptRequest(text: "permission"))
            let timedOut = try await transcript(manager, slow.id)
            #expect(text(timedOut).hasSuffix("permission: rejected"))
            #expect(timedOut.contains { $0.type == "permission_reply" && $0.payload["by"]?.stringValue == "timeout" })
        }
    }

    @Test func alwaysIsRememberedForTheToolKind() async throws {
        try await withSessions { manager, _ in
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            let live = try await manager.loadSession(key: key("ws"), id: session.id)
            let turn = try await live.prompt(PromptRequest(text: "permission"))
            var pending: [PermissionRequestNotice] = []
            while pending.isEmpty {
                try await Task.sleep(for: .milliseconds(20))
                pending = await live.pendingPermissions
            }
            try await manager.replyPermission(key: key("ws"), id: session.id, permissionId: pending[0].permissionId, .always)
            _ = await turn.value
            _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "permission"))
            let replies = try await transcript(manager, session.id).filter { $0.type == "permission_reply" }
            #expect(replies.map { $0.payload["by"]?.stringValue } == ["client", "always"])
            #expect(replies.map { $0.payload["optionId"]?.stringValue } == ["allow-always", "allow-always"])
        }
    }

    @Test func cancelEndsTheTurnAndAnswersPendingPermissions() async throws {
        try await withSessions(idleGrace: .milliseconds(100)) { manager, _ in
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            let live = try await manager.loadSession(key: key("ws"), id: session.id)
            let long = try await live.prompt(PromptRequest(text: "long"))
            // A running turn holds the workspace awake well past its idle grace.
            try await Task.sleep(for: .milliseconds(600))
            #expect(try await manager.workspace(key: key("ws")).state == .running)
            #expect(try await manager.session(key: key("ws"), id: session.id).status == .running)
            await expectCode(.conflict) { _ = try await live.prompt(PromptRequest(text: "another")) }
            try await manager.cancel(key: key("ws"), id: session.id)
            #expect(await long.value.stopReason == "cancelled")
            #expect(text(try await transcript(manager, session.id)).contains("tick 1"), "the long turn ran until cancelled")

            let asking = try await live.prompt(PromptRequest(text: "permission"))
            while await live.pendingPermissions.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            try await manager.cancel(key: key("ws"), id: session.id)
            #expect(await asking.value.stopReason == "cancelled")
            let events = try await transcript(manager, session.id)
            let reply = events.last { $0.type == "permission_reply" }
            #expect(reply?.payload["outcome"]?.stringValue == "cancelled")
            // The turn's end follows the reply (the idle workspace may then sleep: its agent_exited can come after).
            let end = events.last { $0.type == "turn_end" }
            #expect(end?.payload["stopReason"]?.stringValue == "cancelled" && (end?.seq ?? 0) > (reply?.seq ?? 0))
        }
    }

    @Test func anAgentThatIgnoresCancelIsStoppedAfterTheGrace() async throws {
        try await withSessions(configure: { $0.cancelGrace = .milliseconds(300) }) { manager, _ in
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            let live = try await manager.loadSession(key: key("ws"), id: session.id)
            // `run` waits for a command the mock does not abandon on cancel; the command ignores the SIGTERM the cancel
            // sends the agent's terminals (a plain `sleep` ends at once, and so, before the grace, does the turn).
            let turn = try await live.prompt(PromptRequest(text: "run trap '' TERM; sleep 30"))
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            await live.cancel()
            #expect(await turn.value.stopReason == "cancelled")
            // Well before the 30 s command would end by itself (10 s was too tight at a load of 13 on two cores).
            #expect(ContinuousClock.now - started < .seconds(25))
            let events = try await transcript(manager, session.id)
            #expect(events.contains { $0.type == "agent_exited" })
            // The next prompt starts the agent again and reattaches.
            #expect(try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "again"))?.stopReason == "end_turn")
        }
    }

    @Test func afterSleepTheAgentIsReattachedWithSessionLoad() async throws {
        try await withSessions { manager, _ in
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "first"))
            _ = try await manager.sleep(key: key("ws"))
            try await Task.sleep(for: .milliseconds(100))
            #expect(try await manager.session(key: key("ws"), id: session.id).agentRunning == false)
            #expect(try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "second"))?.stopReason == "end_turn")
            let started = try await transcript(manager, session.id).filter { $0.type == "agent_started" }
            #expect(started.map { $0.payload["method"]?.stringValue } == ["new", "load"])
            #expect(started.last?.payload["agentSessionId"]?.stringValue == "mock-session-1")
        }
    }

    @Test func anAgentWithoutLoadGetsTheEarlierTranscriptAsContext() async throws {
        try await withSessions { manager, _ in
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock-noload", instructions: "Be brief."))
            _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "remember marmalade"))
            _ = try await manager.closeSession(key: key("ws"), id: session.id)
            await expectCode(.conflict) { _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "closed")) }
            _ = try await manager.resumeSession(key: key("ws"), id: session.id)
            _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "what did I say"))
            let events = try await transcript(manager, session.id)
            #expect(events.filter { $0.type == "agent_started" }.map { $0.payload["method"]?.stringValue } == ["new", "new-with-transcript"])
            let prompts = events.filter { $0.type == "prompt" }.map { String(describing: $0.payload) }
            #expect(prompts[0].contains("Be brief."), "instructions go with the first prompt")
            #expect(prompts[1].contains("User: remember marmalade") && prompts[1].contains("Agent: "), "\(prompts[1])")
            #expect(text(events).contains("marmalade"), "the agent saw the earlier conversation")
        }
    }

    @Test func theEventStreamCatchesUpFromTheStoreThenFollowsLive() async throws {
        try await withSessions { manager, _ in
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "one two three"))
            let stored = try await transcript(manager, session.id)
            var iterator = try await manager.sessionEventStream(key: key("ws"), id: session.id, after: 2).makeAsyncIterator()
            var seen: [SessionEvent] = []
            while seen.count < stored.count - 2, let event = try await iterator.next() { seen.append(event) }
            #expect(seen == Array(stored.dropFirst(2)))
            _ = try await manager.loadSession(key: key("ws"), id: session.id).prompt(PromptRequest(text: "four"))
            var live: [SessionEvent] = []
            while let event = try await iterator.next() {
                live.append(event)
                if event.type == "turn_end" { break }
            }
            #expect(live.first?.seq == Int64(stored.count + 1) && live.first?.type == "prompt")
            #expect(text(live) == "four")
            try await manager.destroySession(key: key("ws"), id: session.id)
            #expect(try await iterator.next() == nil, "a destroyed session's stream ends")
            await expectCode(.notFound) { _ = try await manager.session(key: key("ws"), id: session.id) }
            #expect(try await manager.store.sessionEvents(of: session.id, after: 0, limit: 10).isEmpty)
        }
    }

    /// While the server drains its streams (it is stopping), a session's stream opened then ends once it has caught
    /// up, also for a session that only loads now (the drain ended the loaded ones): a stream left open would hold the
    /// stop until its grace ran out.
    @Test func aStreamOpenedWhileTheServerDrainsEndsOnceCaughtUp() async throws {
        try await withSessions { manager, directory in
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "one two"))
            await manager.shutdown()
            // A second server of the same data: the session is stored, not loaded.
            let again = try makeManager(directory)
            let stored = try await again.store.sessionEvents(of: session.id, after: 0, limit: 1000)
            #expect(stored.count > 3)
            await again.finishEventStreams()
            var seen: [SessionEvent] = []
            for try await event in try await again.sessionEventStream(key: key("ws"), id: session.id) { seen.append(event) }
            #expect(seen.map(\.seq) == stored.map(\.seq), "caught up, then ended")
            await again.shutdown()
        }
    }

    @Test func manyReadersEachGetEveryEventAndASlowOneCatchesUpFromTheStore() async throws {
        try await withSessions { manager, _ in
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            let after = try await manager.session(key: key("ws"), id: session.id).lastEventSeq
            // 50 readers that keep up, each reading until the turn ends.
            let readers = (0..<50).map { _ in
                Task {
                    var seqs: [Int64] = []
                    for try await batch in try await manager.sessionEventStream(key: key("ws"), id: session.id, after: after).batches {
                        seqs += batch.map(\.seq)
                        if batch.contains(where: { $0.type == "turn_end" }) { break }
                    }
                    return seqs
                }
            }
            // One that takes its first event and then reads nothing while the turn runs: more events than the
            // session keeps in memory go by, so it must continue from the store.
            var slow = try await manager.sessionEventStream(key: key("ws"), id: session.id, after: after).makeAsyncIterator()
            let flood = 3 * AgentSession.recentCapacity
            #expect(try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "flood \(flood)"))?.stopReason == "end_turn")
            let last = try await manager.session(key: key("ws"), id: session.id).lastEventSeq
            let expected = Array((after + 1)...last)
            for reader in readers {
                let seqs = try await reader.value
                #expect(seqs == Array(expected.prefix(seqs.count)) && seqs.count >= flood, "every event, in order")
            }
            var slowSeqs: [Int64] = []
            while slowSeqs.last ?? 0 < last, let event = try await slow.next() { slowSeqs.append(event.seq) }
            #expect(slowSeqs == expected)
            // What the readers got from memory is what the store has, byte for byte in the API's JSON.
            let page = try await manager.encodedSessionEvents(key: key("ws"), id: session.id, after: last - 5, limit: 5).items
            var live = try await manager.sessionEventStream(key: key("ws"), id: session.id, after: last - 5).batches.makeAsyncIterator()
            let fromMemory = try await live.next() ?? []
            #expect(fromMemory.map(\.json) == page.map(\.json) && fromMemory.map(\.event) == page.map(\.event))
        }
    }

    @Test func aRestartMidTurnKeepsTheHistoryAndResumes() async throws {
        try await withTemporaryDirectory { directory in
            let uidBase = 100_000_000 + UInt32.random(in: 0..<15_000) * 262_144
            let first = try makeManager(directory) { $0.sandboxUIDBase = uidBase }
            _ = try await first.create(key: key("ws"))
            let session = try await first.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            _ = try await first.prompt(key: key("ws"), id: session.id, PromptRequest(text: "before"))
            _ = try await first.prompt(key: key("ws"), id: session.id, PromptRequest(text: "long"), wait: false)
            // Stop once the long turn has begun answering (a fixed sleep raced with a slow machine's agent start).
            for _ in 0..<400 {
                let seen = try await first.sessionEvents(key: key("ws"), id: session.id, after: 0, limit: 1000).items
                if text(seen).hasPrefix("beforelong") { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            await first.shutdown()
            let second = try makeManager(directory) { $0.sandboxUIDBase = uidBase }
            let before = try await second.sessionEvents(key: key("ws"), id: session.id, after: 0, limit: 1000).items
            #expect(before.filter { $0.type == "turn_end" }.count == 2, "the interrupted turn is over")
            #expect(text(before).hasPrefix("beforelong"))
            let resumed = try await second.resumeSession(key: key("ws"), id: session.id)
            #expect(resumed.agentRunning && resumed.agentSessionId == "mock-session-1")
            #expect(try await second.prompt(key: key("ws"), id: session.id, PromptRequest(text: "after"))?.stopReason == "end_turn")
            let after = try await second.sessionEvents(key: key("ws"), id: session.id, after: 0, limit: 1000).items
            #expect(Array(after.prefix(before.count)) == before, "the history is intact")
            #expect(after.map(\.seq) == Array(1...Int64(after.count)))
            #expect(after.filter { $0.type == "agent_started" }.last?.payload["method"]?.stringValue == "load")
            await second.shutdown()
        }
    }

    @Test func badInputIsRefused() async throws {
        try await withSessions { manager, _ in
            await expectCode(.invalidArgument) { _ = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "nope")) }
            await expectCode(.invalidArgument) { _ = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock", cwd: "/etc/../..\u{0}")) }
            await expectCode(.invalidArgument) {
                _ = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock", permissions: PermissionPolicy(rules: ["launch": .allow])))
            }
            await expectCode(.invalidArgument) { _ = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock", env: ["A=B": "c"])) }
            // MCP servers: objects with a unique name, never AgentBox's own.
            for servers: [JSONValue] in [
                ["x"], [["command": "/bin/true"]], [["name": "", "command": "/bin/true"]], [["name": .string(String(repeating: "n", count: 129))]],
                [["name": "a", "command": "/bin/true"], ["name": "a", "command": "/bin/false"]], [["name": "agentbox-toolkits", "command": "/bin/true"]],
            ] {
                await expectCode(.invalidArgument) { _ = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock", mcpServers: servers)) }
            }
            await expectCode(.notFound) { _ = try await manager.createSession(key: key("missing"), SessionCreateRequest(agent: "mock")) }
            await expectCode(.invalidArgument) { _ = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock", cwd: "/workspace/missing")) }
            await expectCode(.badGateway) { _ = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "broken")) }
            // A real agent whose model endpoint the egress policy blocks is refused at once, saying what to allow.
            do {
                _ = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "claude"))
                Issue.record("a blocked model endpoint was accepted")
            } catch let error as AgentBoxError {
                #expect(error.code == .forbidden && error.message.contains("api.anthropic.com:443"), "\(error)")
            }
            await expectCode(.forbidden) {
                _ = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "codex", env: ["OPENAI_BASE_URL": "http://127.0.0.1:9/v1"]))
            }
            #expect(try await manager.sessions(key: key("ws")).items.isEmpty, "a session whose agent did not start is not kept")
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            await expectCode(.invalidArgument) { _ = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(content: [])) }
            await expectCode(.invalidArgument) { _ = try await manager.sessionEvents(key: key("ws"), id: session.id, after: 0, limit: 0) }
            await expectCode(.notFound) { _ = try await manager.session(key: key("ws"), id: "ses_0000000000000000") }
            await expectCode(.notFound) { _ = try await manager.session(key: key("ws"), id: "../../etc") }
            await expectCode(.notFound) { try await manager.replyPermission(key: key("ws"), id: session.id, permissionId: "perm_x", .once) }
            _ = try await manager.create(key: key("other"))
            await expectCode(.notFound) { _ = try await manager.session(key: key("other"), id: session.id) }
            #expect(try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "error"))?.stopReason == "error")
            #expect(try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "fine"))?.stopReason == "end_turn", "an agent error is one turn's")
        }
    }
}

/// The ACP conformance peer's sandbox environment (`scripts/setup-acp-peer.sh`), when the test set-up installed it.
let sandboxACPPeer: String? = {
    let directory = ProcessInfo.processInfo.environment["AGENTBOX_ACP_PEER"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/acp-peer").path
    return FileManager.default.isExecutableFile(atPath: directory + "/sandbox-venv/bin/python") ? directory : nil
}()

/// A session with an agent no one here wrote, run by command inside the workspace: the example agent of the
/// `agent-client-protocol` Python package, which checks every message against the protocol's models.
@Suite(
    "A session with the Python SDK's example agent", .enabled(if: Host.canSandbox && sandboxACPPeer != nil, "needs bubblewrap, root and scripts/setup-acp-peer.sh"),
    .timeLimit(.minutes(2)))
struct PythonPeerSessionTests {
    @Test func aGenericACPAgentByCommand() async throws {
        try await withTemporaryDirectory { directory in
            // A copy the workspace's uid can read, mounted read-only at /opt/acp-peer.
            let peer = directory.appendingPathComponent("peer")
            let copy = ChildProcess()
            copy.executableURL = URL(fileURLWithPath: "/bin/sh")
            copy.arguments = ["-c", "mkdir -p '\(peer.path)' && cp -a '\(sandboxACPPeer!)/sandbox-venv' '\(sandboxACPPeer!)/agent.py' '\(peer.path)/' && chmod -R a+rX '\(directory.path)'"]
            try copy.run()
            copy.waitUntilExit()
            #expect(copy.terminationStatus == 0)
            let manager = try makeManager(directory, allowHostMounts: [peer.path]) { configuration in
                configuration.agents.append(
                    AgentDefinition(id: "python-example", name: "ACP Python SDK example", command: ["/opt/acp-peer/sandbox-venv/bin/python", "/opt/acp-peer/agent.py"]))
            }
            _ = try await manager.create(
                key: key("py"), config: WorkspaceConfig(mounts: [WorkspaceMount(type: .host, path: "/opt/acp-peer", hostPath: peer.path, readOnly: true)]))
            let session = try await manager.createSession(key: key("py"), SessionCreateRequest(agent: "python-example"))
            #expect(session.agentRunning && session.agentSessionId?.isEmpty == false)
            let result = try await manager.prompt(key: key("py"), id: session.id, PromptRequest(text: "hello from a workspace"))
            #expect(result?.stopReason == "end_turn")
            let events = try await manager.sessionEvents(key: key("py"), id: session.id, after: 0, limit: 100).items
            let texts = events.filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }
            #expect(texts == ["Client sent:", "hello from a workspace"], "\(events)")
            // It offers no session/load: after sleep, a new agent session gets the transcript.
            _ = try await manager.sleep(key: key("py"))
            #expect(try await manager.prompt(key: key("py"), id: session.id, PromptRequest(text: "again"))?.stopReason == "end_turn")
            let started = try await manager.sessionEvents(key: key("py"), id: session.id, after: 0, limit: 100).items.filter { $0.type == "agent_started" }
            #expect(started.map { $0.payload["method"]?.stringValue } == ["new", "new-with-transcript"])
            await manager.shutdown()
        }
    }
}
