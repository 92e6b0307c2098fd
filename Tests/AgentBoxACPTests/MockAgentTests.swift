import AgentBoxACP
import AgentBoxAPI
import Foundation
import Synchronization
import Testing

/// A client connected in-process to a `MockAgent`, with a scripted file system, terminal and permission answer.
final class Harness: Sendable {
    let client: JSONRPCConnection
    let agent: MockAgent
    let updates = Mutex<[ACP.SessionNotification]>([])
    let files = Mutex<[String: String]>([:])
    let permissionAnswer: ACP.RequestPermissionResult
    let permissionAsked = Mutex(0)

    init(permissionAnswer: ACP.RequestPermissionResult = .selected("allow-once")) async {
        self.permissionAnswer = permissionAnswer
        // Each side's writes are the other side's reads, one line at a time and in order.
        let toAgent = LineChannel(), toClient = LineChannel()
        client = JSONRPCConnection { line in await toAgent.send(line) }
        let agentConnection = JSONRPCConnection { line in await toClient.send(line) }
        agent = MockAgent(connection: agentConnection)
        await agent.start()
        toAgent.run { await agentConnection.receive(line: $0) }
        await client.setHandlers(
            request: { [self] method, params in
                switch method {
                case ACP.Method.requestPermission:
                    _ = try ACP.decode(ACP.RequestPermissionParams.self, from: params)
                    permissionAsked.withLock { $0 += 1 }
                    return try ACP.json(permissionAnswer)
                case ACP.Method.writeTextFile:
                    let write = try ACP.decode(ACP.WriteTextFileParams.self, from: params)
                    files.withLock { $0[write.path] = write.content }
                    return .null
                case ACP.Method.readTextFile:
                    let read = try ACP.decode(ACP.ReadTextFileParams.self, from: params)
                    guard let content = files.withLock({ $0[read.path] }) else { throw JSONRPCError.invalidParams("no file \(read.path)") }
                    return try ACP.json(ACP.ReadTextFileResult(content: content))
                case ACP.Method.createTerminal:
                    let create = try ACP.decode(ACP.CreateTerminalParams.self, from: params)
                    #expect(create.command == "/bin/sh" && create.args?.first == "-c")
                    return try ACP.json(ACP.CreateTerminalResult(terminalId: "term-1"))
                case ACP.Method.waitForTerminalExit:
                    return try ACP.json(ACP.TerminalExitStatus(exitCode: 0, signal: nil))
                case ACP.Method.terminalOutput:
                    return try ACP.json(ACP.TerminalOutputResult(output: "fake output", truncated: false, exitStatus: .init(exitCode: 0, signal: nil)))
                case ACP.Method.releaseTerminal:
                    return .null
                default:
                    throw JSONRPCError.methodNotFound(method)
                }
            },
            notification: { [self] method, params in
                guard method == ACP.Method.update, let update = try? ACP.decode(ACP.SessionNotification.self, from: params) else { return }
                updates.withLock { $0.append(update) }
            })
        let client = client
        toClient.run { await client.receive(line: $0) }
    }

    func session(mcpServers: [JSONValue] = []) async throws -> String {
        let initialized = try ACP.decode(
            ACP.InitializeResult.self, from: try await client.request(ACP.Method.initialize, params: try ACP.json(ACP.InitializeParams.agentBox)))
        #expect(initialized.protocolVersion == 1 && initialized.agentCapabilities?.loadSession == true)
        return try ACP.decode(
            ACP.NewSessionResult.self,
            from: try await client.request(ACP.Method.newSession, params: try ACP.json(ACP.NewSessionParams(cwd: "/workspace", mcpServers: mcpServers)))
        ).sessionId
    }

    func prompt(_ session: String, _ text: String) async throws -> String {
        try ACP.decode(
            ACP.PromptResult.self,
            from: try await client.request(ACP.Method.prompt, params: try ACP.json(ACP.PromptParams(sessionId: session, prompt: [.init(text: text)])))
        ).stopReason
    }

    /// The text of the agent's message chunks so far.
    var message: String {
        updates.withLock { updates in
            updates.compactMap { update -> String? in
                guard update.kind == "agent_message_chunk", case .object(let fields) = update.update, case .object(let content)? = fields["content"],
                    case .string(let text)? = content["text"]
                else { return nil }
                return text
            }.joined()
        }
    }

    var kinds: [String] { updates.withLock { $0.compactMap(\.kind) } }
}

/// An ordered hand-off of lines from one side to the other (a test's conversation is short, so it needs no bound).
final class LineChannel: Sendable {
    private let stream: AsyncStream<Data>
    private let continuation: AsyncStream<Data>.Continuation

    init() { (stream, continuation) = AsyncStream.makeStream(of: Data.self) }

    func send(_ line: Data) async { continuation.yield(line) }

    func run(_ deliver: @escaping @Sendable (Data) async -> Void) {
        let stream = stream
        Task { for await line in stream { await deliver(line) } }
    }
}

@Suite("Mock agent over ACP", .timeLimit(.minutes(1)))
struct MockAgentTests {
    @Test func echoesThePromptAndEndsTheTurn() async throws {
        let harness = await Harness()
        let session = try await harness.session()
        #expect(try await harness.prompt(session, "hello   there agent") == "end_turn")
        #expect(harness.message == "hello there agent")
        #expect(harness.kinds == ["agent_message_chunk", "agent_message_chunk", "agent_message_chunk"])
    }

    @Test func planToolAndFileAndTerminalSteps() async throws {
        let harness = await Harness()
        let session = try await harness.session()
        #expect(try await harness.prompt(session, "plan tool write /workspace/a.txt some text") == "end_turn")
        #expect(harness.kinds.contains("plan"))
        #expect(harness.kinds.filter { $0 == "tool_call_update" }.count == 2 && harness.kinds.contains("tool_call"))
        #expect(harness.files.withLock { $0["/workspace/a.txt"] } == "some text")
        #expect(harness.message.hasSuffix("wrote /workspace/a.txt"))
        #expect(try await harness.prompt(session, "read /workspace/a.txt") == "end_turn")
        #expect(harness.message.hasSuffix("/workspace/a.txt: some text"))
        #expect(try await harness.prompt(session, "run echo hi") == "end_turn")
        #expect(harness.message.hasSuffix("ran `echo hi`: exit 0, output: fake output"))
    }

    @Test(arguments: [
        (ACP.RequestPermissionResult.selected("allow-once"), "permission: approved"),
        (ACP.RequestPermissionResult.selected("reject-once"), "permission: rejected"),
        (ACP.RequestPermissionResult.cancelled, "permission: cancelled"),
    ])
    func permissionRequestsFollowTheAnswer(answer: ACP.RequestPermissionResult, said: String) async throws {
        let harness = await Harness(permissionAnswer: answer)
        let session = try await harness.session()
        let stop = try await harness.prompt(session, "permission")
        #expect(harness.permissionAsked.withLock { $0 } == 1)
        #expect(harness.message.hasSuffix(said), "\(harness.message)")
        #expect(stop == (answer == .cancelled ? "cancelled" : "end_turn"))
    }

    @Test func aLongTurnEndsWhenCancelled() async throws {
        let harness = await Harness()
        let session = try await harness.session()
        async let stop = harness.prompt(session, "long")
        while !harness.message.contains("tick 2") { try await Task.sleep(for: .milliseconds(20)) }
        try await harness.client.notify(ACP.Method.cancel, params: try ACP.json(ACP.CancelParams(sessionId: session)))
        #expect(try await stop == "cancelled")
        #expect(!harness.message.contains("tick 100"))
    }

    @Test func errorsAndBadRequestsAreJSONRPCErrors() async throws {
        let harness = await Harness()
        let session = try await harness.session()
        await #expect(throws: JSONRPCError.self) { _ = try await harness.prompt(session, "error please") }
        await #expect(throws: JSONRPCError.self) { _ = try await harness.prompt("no-such-session", "hi") }
        do {
            _ = try await harness.client.request("no/such/method", params: nil)
            Issue.record("an unknown method was answered")
        } catch let error as JSONRPCError {
            #expect(error.code == -32601)
        }
        do {
            _ = try await harness.client.request(ACP.Method.prompt, params: .object(["sessionId": .number(3)]))
            Issue.record("bad params were accepted")
        } catch let error as JSONRPCError {
            #expect(error.code == -32602)
        }
    }

    @Test func linesAreSplitAndBounded() throws {
        var splitter = LineSplitter(maximum: 16)
        #expect(try splitter.append(Array("ab\ncd".utf8)) == [Data("ab".utf8)])
        #expect(try splitter.append(Array("e\n\n".utf8)) == [Data("cde".utf8), Data()])
        #expect(throws: LineSplitter.LineTooLong.self) { try splitter.append(Array(repeating: UInt8(ascii: "x"), count: 17)) }
    }
}
