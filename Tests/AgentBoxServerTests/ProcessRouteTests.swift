import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

let canSandbox = FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") && getuid() == 0

@Suite("Process routes", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct ProcessRouteTests {
    func post(_ client: any TestClientProtocol, _ uri: String, _ json: String) async throws -> TestResponse {
        try await client.execute(uri: uri, method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: json))
    }

    @Test func execSpawnStdinWaitSignalOverHTTP() async throws {
        try await withServer(sandbox: true) { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/p", method: .put)
            let exec = try await post(client, "/v1/workspaces/p/exec", #"{"command":"echo hi; exit 3"}"#)
            #expect(exec.status == .ok)
            let result = try decode(ExecResult.self, exec)
            #expect(result.stdout == "hi\n" && result.exitCode == 3)

            let spawned = try await post(client, "/v1/workspaces/p/processes", #"{"command":"cat"}"#)
            #expect(spawned.status == .created)
            let process = try decode(WorkspaceProcess.self, spawned)
            let stdin = try await client.execute(
                uri: "/v1/workspaces/p/processes/\(process.id)/stdin?close=true", method: .post,
                headers: [.contentType: "application/octet-stream"], body: ByteBuffer(bytes: [0x68, 0x69, 0xFF]))
            #expect(stdin.status == .noContent)
            let waited = try decode(WorkspaceProcess.self, try await client.execute(uri: "/v1/workspaces/p/processes/\(process.id)/wait?timeoutMs=10000", method: .post))
            #expect(waited.status == .exited && waited.exitCode == 0)
            let output = try decode(ProcessOutput.self, try await client.execute(uri: "/v1/workspaces/p/processes/\(process.id)/output", method: .get))
            #expect(output.stdoutEncoding == .base64 && OutputText.bytes(output.stdout, encoding: output.stdoutEncoding) == [0x68, 0x69, 0xFF])
            let followed = try await client.execute(uri: "/v1/workspaces/p/processes/\(process.id)/output?follow=true", method: .get)
            #expect(followed.headers[.contentType] == "text/event-stream")
            #expect(String(buffer: followed.body).contains("event: processExit"))

            let sleeper = try decode(WorkspaceProcess.self, try await post(client, "/v1/workspaces/p/processes", #"{"command":"sleep","args":["60"]}"#))
            let timeout = try await client.execute(uri: "/v1/workspaces/p/processes/\(sleeper.id)/wait?timeoutMs=50", method: .post)
            try expectProblem(timeout, .requestTimeout)
            #expect(try await post(client, "/v1/workspaces/p/processes/\(sleeper.id)/signal", #"{"signal":"INT"}"#).status == .noContent)
            let interrupted = try decode(WorkspaceProcess.self, try await client.execute(uri: "/v1/workspaces/p/processes/\(sleeper.id)/wait", method: .post))
            #expect(interrupted.signal == "INT")
            try expectProblem(try await post(client, "/v1/workspaces/p/processes/\(sleeper.id)/signal", #"{"signal":"TERM"}"#), .conflict)

            let list = try decode(ProcessList.self, try await client.execute(uri: "/v1/workspaces/p/processes", method: .get))
            #expect(Set(list.items.map(\.id)).isSuperset(of: [result.processId, process.id, sleeper.id]))
        }
    }

    @Test func badProcessInputIs4xx() async throws {
        try await withServer(sandbox: true) { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/p", method: .put)
            let sleeper = try decode(WorkspaceProcess.self, try await post(client, "/v1/workspaces/p/processes", #"{"command":"sleep","args":["60"]}"#))
            let cases: [(String, String, HTTPResponse.Status, String)] = [
                ("/v1/workspaces/p/exec", #"{"command":""}"#, .badRequest, "command"),
                ("/v1/workspaces/p/exec", #"{"cmd":"ls"}"#, .badRequest, "missing field 'command'"),
                ("/v1/workspaces/p/exec", #"{"command":"ls","cwd":"/nope"}"#, .badRequest, "cwd"),
                ("/v1/workspaces/p/exec", #"{"command":"ls","timeoutMs":-5}"#, .badRequest, "timeoutMs"),
                ("/v1/workspaces/p/exec", #"{"command":"ls","env":{"A=B":"x"}}"#, .badRequest, "env name"),
                ("/v1/workspaces/p/exec", #"{"command":"ls","maxOutputBytes":99999999999}"#, .badRequest, "maxOutputBytes"),
                ("/v1/workspaces/p/processes", #"{"command":"definitely-not-a-program"}"#, .badRequest, "definitely-not-a-program"),
                ("/v1/workspaces/p/processes", #"{"command":"ls","args":"-l"}"#, .badRequest, "'args' should be an array"),
                ("/v1/workspaces/p/processes/\(sleeper.id)/signal", #"{"signal":"BOOM"}"#, .badRequest, "signal must be one of"),
                ("/v1/workspaces/p/processes/proc_nothere/signal", #"{"signal":"TERM"}"#, .notFound, "no process"),
                ("/v1/workspaces/p/processes/not-an-id/signal", #"{"signal":"TERM"}"#, .badRequest, "not a process id"),
                ("/v1/workspaces/p/processes/\(sleeper.id)/wait?timeoutMs=soon", "", .badRequest, "timeoutMs"),
                ("/v1/workspaces/p/processes/\(sleeper.id)/stdin?close=maybe", "", .badRequest, "close"),
                ("/v1/workspaces/nope/exec", #"{"command":"ls"}"#, .notFound, "no workspace"),
                ("/v1/workspaces/other/processes/\(sleeper.id)/signal", #"{"signal":"TERM"}"#, .notFound, "no workspace"),
            ]
            for (uri, body, status, fragment) in cases {
                let detail = try expectProblem(try await post(client, uri, body), status)
                #expect(detail.contains(fragment), "\(uri) \(body): \(detail)")
            }
            // After all of that, the workspace still works and the process is untouched.
            #expect(try decode(WorkspaceProcess.self, try await client.execute(uri: "/v1/workspaces/p/processes/\(sleeper.id)", method: .get)).status == .running)
            _ = try await client.execute(uri: "/v1/workspaces/other", method: .put)
            try expectProblem(try await client.execute(uri: "/v1/workspaces/other/processes/\(sleeper.id)", method: .get), .notFound)
        }
    }
}

@Suite("A process's output followed over SSE", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct ProcessFollowRouteTests {
    /// Sends `request`, runs `meanwhile` (while nothing is read: a client that does not read), then reads what the
    /// server sends until `done` holds for the tail of it or 20 s pass; reading is off the cooperative pool.
    static func read(
        _ port: Int, _ request: String, meanwhile: @Sendable () async throws -> Void = {}, until done: @escaping @Sendable (String) -> Bool
    ) async throws -> String {
        let raw = try RawConnection(port: port)
        defer { raw.close() }
        _ = request.utf8CString.withUnsafeBufferPointer { send(raw.fd, $0.baseAddress, $0.count - 1, 0) }
        try await meanwhile()
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var tail = ""
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                let deadline = Date().addingTimeInterval(20)
                while Date() < deadline {
                    let count = recv(raw.fd, &buffer, buffer.count, 0)
                    if count <= 0 { break }
                    tail = String((tail + String(decoding: buffer[..<count], as: UTF8.self)).suffix(4096))
                    if done(tail) { break }
                }
                continuation.resume(returning: tail)
            }
        }
    }

    /// A client that reads slower than the process writes is told, with an `error` event, once it is the follower's
    /// limit behind (the stream used to stop, or drop chunks, without a word); one that keeps up gets the exit.
    @Test func aClientTooFarBehindGetsAnErrorEvent() async throws {
        try await withLiveServer { client, _ in
            let port = try #require(client.port)
            _ = try await client.execute(uri: "/v1/workspaces/f", method: .put)
            func start(_ bytes: Int) async throws -> String {
                let body = #"{"command":"sh","args":["-c","sleep 0.3; head -c \#(bytes) /dev/zero | tr '\\0' a; sleep 2"]}"#
                let started = try await client.execute(uri: "/v1/workspaces/f/processes", method: .post, headers: json, body: ByteBuffer(string: body))
                return try decode(WorkspaceProcess.self, started).id
            }
            func follow(_ id: String) -> String {
                "GET /v1/workspaces/f/processes/\(id)/output?follow=true HTTP/1.1\r\nHost: x\r\n\r\n"
            }
            let ended: @Sendable (String) -> Bool = { $0.contains("event: error") || $0.contains("event: processExit") }
            // Nothing is read until the process has written all 48 MiB and exited (its wait answers): a loaded machine
            // may take longer than any fixed pause to write them.
            let slowID = try await start(48 << 20)
            let slow = try await Self.read(port, follow(slowID), meanwhile: {
                _ = try await client.execute(uri: "/v1/workspaces/f/processes/\(slowID)/wait?timeoutMs=60000", method: .post)
            }, until: ended)
            #expect(slow.contains("event: error") && slow.contains("fell 16 MiB behind"), "\(slow.suffix(300))")
            let fast = try await Self.read(port, follow(try await start(4 << 20)), until: ended)
            #expect(fast.contains("event: processExit") && !fast.contains("event: error"), "\(fast.suffix(300))")
        }
    }
}
