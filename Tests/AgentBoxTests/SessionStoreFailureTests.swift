import AgentBox
import AgentBoxAPI
import AgentBoxStore
import Foundation
import Logging
import Synchronization
import Testing

/// A session with the mock agent (unsandboxed: no root needed) over a store that refuses transcript writes on demand.
@Suite("A session whose store refuses its transcript", .timeLimit(.minutes(1)))
struct SessionStoreFailureTests {
    static let mockAgent = URL(fileURLWithPath: AgentBoxConfiguration.defaultSandboxInitPath()).deletingLastPathComponent()
        .appendingPathComponent("agentbox-mock-agent").path

    /// What the workspace stream carried for the session, with whether each event was stored when it arrived.
    final class Seen: Sendable {
        private let events = Mutex<[(seq: Int64, stored: Bool)]>([])
        func add(_ seq: Int64, stored: Bool) { events.withLock { $0.append((seq, stored)) } }
        var seqs: [Int64] { events.withLock { $0.map(\.seq) } }
        var allStored: Bool { events.withLock { $0.allSatisfy(\.stored) } }
    }

    /// An unsandboxed manager in `directory` over a ``WriteFailingStore``, with workspace `ws` made.
    static func makeManager(_ directory: URL) async throws -> (WorkspaceManager, WriteFailingStore) {
        for folder in ["workspaces", "snapshots"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        let store = WriteFailingStore(try SQLiteStore(path: directory.appendingPathComponent("agentbox.sqlite").path))
        let (backend, _) = try SandboxKind.unsandboxed.makeBackend(dataDirectory: directory)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let manager = WorkspaceManager(configuration: AgentBoxConfiguration(dataDirectory: directory, sandbox: backend), store: store, logger: logger)
        _ = try await manager.create(key: key("ws"))
        return (manager, store)
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: mockAgent), "needs agentbox-mock-agent beside the tests"))
    func theTurnEndsWithAnErrorNothingUnstoredIsPublishedAndPromptsWaitForTheStore() async throws {
        try await withTemporaryDirectory { directory in
            let (manager, store) = try await Self.makeManager(directory)

            let stream = try await manager.events(key: key("ws"))
            let (questions, asked) = AsyncStream<String>.makeStream()
            let seen = Seen()
            let watcher = Task {
                for await envelope in stream {
                    switch envelope.event {
                    case .permissionRequest(let notice): asked.yield(notice.permissionId)
                    case .sessionEvent(let notice):
                        let stored = try? await store.base.sessionEvents(of: notice.sessionId, after: notice.seq - 1, limit: 1)
                        seen.add(notice.seq, stored: stored?.first?.seq == notice.seq)
                        if notice.event.type == "turn_end", notice.event.payload["stopReason"]?.stringValue == "end_turn" { return }
                    default: break
                    }
                }
            }

            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            let live = try await manager.loadSession(key: key("ws"), id: session.id)
            let turn = try await live.prompt(PromptRequest(text: "permission"))
            var pending = questions.makeAsyncIterator()
            let permissionId = try #require(await pending.next())

            // The reply and what the agent says next cannot be stored.
            store.failing = true
            try await manager.replyPermission(key: key("ws"), id: session.id, permissionId: permissionId, .once)
            let result = await turn.value
            #expect(result.stopReason == "error" && result.error?.contains("could not be stored") == true, "\(result)")
            let storedThen = try await store.base.lastSessionEventSeq(of: session.id)
            #expect(seen.seqs.allSatisfy { $0 <= storedThen }, "nothing past what is stored was published")
            let refusal = await #expect(throws: AgentBoxError.self) { try await live.prompt(PromptRequest(text: "hello")) }
            #expect(refusal?.code == .unavailable, "no prompts while the transcript cannot be stored")
            #expect(try await manager.session(key: key("ws"), id: session.id).status == .idle)

            // The store recovers: what waited is written (and only then published), and the session takes prompts.
            store.failing = false
            let again = try await manager.prompt(key: key("ws"), id: session.id, PromptRequest(text: "hello"))
            #expect(again?.stopReason == "end_turn")
            await withTaskCancellationHandler { await watcher.value } onCancel: { watcher.cancel() }
            asked.finish()
            let stored = try await store.base.sessionEvents(of: session.id, after: 0, limit: 1000)
            #expect(stored.map(\.seq) == Array(1...Int64(stored.count)), "no gaps: the refused events were kept and written in order")
            #expect(stored.contains { $0.kind == "error" && $0.payload.contains("could not be stored") })
            #expect(stored.contains { $0.kind == "permission_reply" && $0.payload.contains("client") })
            let published = seen.seqs
            #expect(published == Array(stored.map(\.seq).prefix(published.count)), "published once each, in order")
            #expect(seen.allStored, "every event was in the store when it was published")
            #expect(store.refused >= 3)
            await manager.shutdown()
        }
    }

    /// A page read right after the call that recorded events has them, also when the store is slow to write them:
    /// the page waits for what was recorded before it (here the create's `agent_started`).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: mockAgent), "needs agentbox-mock-agent beside the tests"))
    func aPageReadRightAfterTheCreateHasWhatTheCreateRecorded() async throws {
        try await withTemporaryDirectory { directory in
            let (manager, store) = try await Self.makeManager(directory)
            store.delay = .milliseconds(300)
            let session = try await manager.createSession(key: key("ws"), SessionCreateRequest(agent: "mock"))
            let page = try await manager.sessionEvents(key: key("ws"), id: session.id)
            #expect(page.items.contains { $0.type == "agent_started" }, "\(page.items.map(\.type))")
            store.delay = .zero
            await manager.shutdown()
        }
    }
}
