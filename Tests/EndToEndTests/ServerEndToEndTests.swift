import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing

@Suite("The real agentbox binary", .timeLimit(.minutes(2)))
struct ServerEndToEndTests {
    @Test func theClientDrivesARealServer() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--idle-grace", "300ms"])
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            #expect(try await client.health().version == agentBoxVersion)

            let (workspace, created) = try await client.putWorkspace("e2e", config: WorkspaceConfig(limits: WorkspaceLimits(pids: 64)))
            #expect(created && workspace.state == .sleeping && workspace.limits.pids == 64)
            #expect(try await client.putWorkspace("e2e").created == false)

            // Lazy boot, then sleep after the idle grace, both seen on the event stream.
            let events = try await client.events("e2e")
            var iterator = events.makeAsyncIterator()
            #expect(try await client.wakeWorkspace("e2e").state == .running)
            let booted = try #require(try await iterator.next())
            guard case .vmBooted = booted.event else { throw ServerStartFailed(message: "expected vmBooted, got \(booted)") }
            let slept = try #require(try await iterator.next())
            #expect(slept.event == .vmShutdown(VMShutdown(reason: .sleep)))
            #expect(slept.seq > booted.seq)
            #expect(try await client.workspace("e2e").state == .sleeping)

            // Resuming after a sequence number replays what followed it.
            var replay = try await client.events("e2e", after: booted.seq).makeAsyncIterator()
            #expect(try await replay.next() == slept)

            #expect(try await client.allWorkspaces().map(\.key.rawValue) == ["e2e"])
            try await client.deleteWorkspace("e2e")
            let error = await #expect(throws: AgentBoxClientError.self) { try await client.workspace("e2e") }
            #expect(error?.status == 404)
            #expect(await server.stop() == 0, "SIGTERM shuts the server down cleanly")
        }
    }

    @Test func aWrongTokenIsRefusedByTheRealServer() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let anonymous = AgentBoxClient(endpoint: server.endpoint, token: nil)
            #expect(try await anonymous.health().status == "ok", "health needs no token")
            let error = await #expect(throws: AgentBoxClientError.self) { try await anonymous.workspaces() }
            #expect(error?.status == 401)
            let wrong = AgentBoxClient(endpoint: server.endpoint, token: "not-it")
            await #expect(throws: AgentBoxClientError.self) { try await wrong.putWorkspace("x") }
            await server.stop()
        }
    }

    /// A request that is not valid HTTP/1.1 gets a 400 problem and a closed connection, as the first request of a
    /// connection (before the server's HTTP handlers are there) and after a valid one; the server keeps serving.
    @Test func malformedRequestsAreRefusedWithA400() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let port = server.endpoint.port!
            for first in [
                "NOT HTTP AT ALL\r\n\r\n",
                "POST /v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                "GET /v1/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            ] {
                let socket = try RawSocket(port: port)
                try socket.send(first)
                let (bytes, closed) = socket.receiveUntilClosed()
                let answers = RawHTTPResponse.parseAll(bytes)
                #expect(closed && answers.map(\.status) == [400], "\(first.debugDescription): \(String(decoding: bytes, as: UTF8.self))")
                #expect(answers.first?.headers["content-type"] == "application/problem+json" && answers.first?.body.contains("\"status\":400") == true)
            }
            // After a valid request, Hummingbird's own handling answers (400, closed).
            let second = try RawSocket(port: port)
            try second.send("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
            let (bytes, closed) = second.receiveUntilClosed()
            #expect(closed && RawHTTPResponse.parseAll(bytes).map(\.status) == [200, 400], "\(String(decoding: bytes, as: UTF8.self))")
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            #expect(try await client.health().status == "ok")
            await server.stop()
        }
    }

    @Test func workspacesAndEventNumbersSurviveARestart() async throws {
        try await withTemporaryDirectory { data in
            let first = try await ServerProcess.start(dataDirectory: data)
            var client = AgentBoxClient(endpoint: first.endpoint, token: first.token)
            let (original, _) = try await client.putWorkspace("durable", config: WorkspaceConfig(env: ["K": "V"]))
            var iterator = try await client.events("durable").makeAsyncIterator()
            _ = try await client.wakeWorkspace("durable")
            let before = try #require(try await iterator.next())
            #expect(await first.stop() == 0)

            let second = try await ServerProcess.start(dataDirectory: data)
            client = AgentBoxClient(endpoint: second.endpoint, token: second.token)
            let restored = try await client.workspace("durable")
            #expect(restored.key == original.key && restored.env == ["K": "V"] && restored.state == .sleeping)
            #expect(abs(restored.createdAt.timeIntervalSince(original.createdAt)) < 0.001)
            var after = try await client.events("durable").makeAsyncIterator()
            _ = try await client.wakeWorkspace("durable")
            let next = try #require(try await after.next())
            #expect(next.seq > before.seq, "event numbers keep increasing across a restart")
            await second.stop()
        }
    }

    @Test func aKilledServerLosesNoAnsweredWrite() async throws {
        try await withTemporaryDirectory { data in
            let first = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: first.endpoint, token: first.token)
            for index in 0..<20 { _ = try await client.putWorkspace("w\(index)") }
            await first.stop(signal: SIGKILL)
            let second = try await ServerProcess.start(dataDirectory: data)
            let keys = try await AgentBoxClient(endpoint: second.endpoint, token: second.token).allWorkspaces(pageSize: 7)
            #expect(keys.count == 20)
            await second.stop()
        }
    }

    @Test func gracefulShutdownEndsOpenEventStreams() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("open")
            _ = try await client.wakeWorkspace("open")
            let stream = try await client.events("open")
            let status = await server.stop()
            #expect(status == 0)
            // The stream ends (after the shutdown's vmShutdown) instead of holding the server open.
            var names: [String] = []
            do {
                for try await event in stream { names.append(event.event.name) }
            } catch {
                // A connection closed mid-frame is also an end.
            }
            #expect(names.last == "vmShutdown" || names.isEmpty)
        }
    }

    @Test func refusesANonLoopbackAddressWithoutAToken() async throws {
        let result = try await AgentBoxBinary.run(["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", "/tmp/agentbox-never"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("without a token"))
    }
}
