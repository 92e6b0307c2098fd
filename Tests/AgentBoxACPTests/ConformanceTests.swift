@testable import AgentBoxACP
import AgentBoxAPI
import ChildProcessSupport
import Foundation
import Synchronization
import Testing

/// The directory of the ACP conformance peer (`scripts/setup-acp-peer.sh`), when the test set-up installed it.
/// `scripts/test.sh` (and so CI) always does; a bare `swift test` without it skips this suite.
let acpPeer: String? = {
    let directory = ProcessInfo.processInfo.environment["AGENTBOX_ACP_PEER"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/acp-peer").path
    return FileManager.default.fileExists(atPath: directory + "/agent.py") ? directory : nil
}()

/// AgentBox's ACP client against a peer no one here wrote: the example agent of the `agent-client-protocol` Python
/// package, which validates every message with the protocol's generated models.
@Suite("ACP conformance with the Python SDK's example agent", .enabled(if: acpPeer != nil, "run scripts/setup-acp-peer.sh"), .timeLimit(.minutes(1)))
struct ConformanceTests {
    @Test func initializeNewSessionPromptAndCancel() async throws {
        let peer = acpPeer!
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: peer + "/venv/bin/python")
        process.arguments = [peer + "/agent.py"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { process.terminate() }
        let writer = input.fileHandleForWriting
        let client = JSONRPCConnection { line in writer.write(line) }
        let updates = Mutex<[ACP.SessionNotification]>([])
        await client.setHandlers(
            request: { method, _ in throw JSONRPCError.methodNotFound(method) },
            notification: { method, params in
                guard method == ACP.Method.update, let update = try? ACP.decode(ACP.SessionNotification.self, from: params) else { return }
                updates.withLock { $0.append(update) }
            })
        // The agent's stdout, line by line, in order, on a thread of its own.
        let reader = output.fileHandleForReading.fileDescriptor
        Thread.detachNewThread { StandardIO.feed(descriptor: reader, into: client) }

        let initialized = try ACP.decode(
            ACP.InitializeResult.self, from: try await client.request(ACP.Method.initialize, params: try ACP.json(ACP.InitializeParams.agentBox)))
        #expect(initialized.protocolVersion == ACP.protocolVersion)
        let session = try ACP.decode(
            ACP.NewSessionResult.self, from: try await client.request(ACP.Method.newSession, params: try ACP.json(ACP.NewSessionParams(cwd: "/workspace"))))
        #expect(!session.sessionId.isEmpty)
        let result = try ACP.decode(
            ACP.PromptResult.self,
            from: try await client.request(
                ACP.Method.prompt, params: try ACP.json(ACP.PromptParams(sessionId: session.sessionId, prompt: [.init(text: "hello from AgentBox")]))))
        #expect(result.stopReason == "end_turn")
        let texts = updates.withLock { updates in
            updates.compactMap { update -> String? in
                guard update.kind == "agent_message_chunk", case .object(let fields) = update.update, case .object(let content)? = fields["content"],
                    case .string(let text)? = content["text"]
                else { return nil }
                return text
            }
        }
        #expect(texts == ["Client sent:", "hello from AgentBox"], "\(texts)")
        #expect(updates.withLock { $0.allSatisfy { $0.sessionId == session.sessionId } })
        // A cancel is a notification the peer accepts; a method it lacks is a JSON-RPC error, not a hang.
        try await client.notify(ACP.Method.cancel, params: try ACP.json(ACP.CancelParams(sessionId: session.sessionId)))
        do {
            _ = try await client.request("no/such/method", params: .object([:]))
            Issue.record("the peer answered an unknown method")
        } catch let error as JSONRPCError {
            #expect(error.code == -32601, "\(error)")
        }
        try writer.close()
        await client.close()
    }
}
