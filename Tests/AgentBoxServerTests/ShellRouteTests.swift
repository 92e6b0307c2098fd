import AgentBox
import AgentBoxAPI
import AgentBoxServer
import AgentBoxStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import Logging
import Testing

/// A live server (WebSockets need a real socket) over a manager with real sandboxes.
func withLiveServer(
    token: String? = nil, server: (inout ServerConfiguration) -> Void = { _ in }, configure: (inout AgentBoxConfiguration) -> Void = { _ in },
    _ body: @Sendable (any TestClientProtocol, WorkspaceManager) async throws -> Void
) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-live-\(UUID())")
    defer { try? FileManager.default.removeItem(at: directory) }
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    var configuration = AgentBoxConfiguration(dataDirectory: directory)
    configuration.sandbox = try SandboxKind.linux.makeBackend(dataDirectory: directory).backend
    configuration.sandboxUIDBase = 100_000_000 + UInt32.random(in: 0..<15_000) * 262_144
    configure(&configuration)
    let manager = try WorkspaceManager.open(configuration: configuration, store: try SQLiteStore.open(in: directory), logger: logger)
    var serverConfiguration = ServerConfiguration(port: 0, token: token)
    server(&serverConfiguration)
    let app = try buildApplication(manager: manager, configuration: serverConfiguration, logger: logger)
    try await app.test(.live) { client in try await body(client, manager) }
    await manager.shutdown()
}


@Suite("Shell routes", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct ShellRouteTests {
    func openShell(_ client: some TestClientProtocol, _ key: String, _ body: String = #"{"command":"/bin/sh"}"#) async throws -> Shell {
        _ = try await client.execute(uri: "/v1/workspaces/\(key)", method: .put)
        let response = try await client.execute(uri: "/v1/workspaces/\(key)/shells", method: .post, headers: json, body: ByteBuffer(string: body))
        #expect(response.status == .created)
        return try decode(Shell.self, response)
    }

    @Test func httpRoutesAndBadInput() async throws {
        try await withLiveServer { client, _ in
            let shell = try await openShell(client, "h")
            let list = try decode(ShellList.self, try await client.execute(uri: "/v1/workspaces/h/shells", method: .get))
            #expect(list.items.map(\.id) == [shell.id])
            let input = try await client.execute(uri: "/v1/workspaces/h/shells/\(shell.id)/input", method: .post, body: ByteBuffer(string: "echo hi\n"))
            #expect(input.status == .noContent)
            let resize = try await client.execute(
                uri: "/v1/workspaces/h/shells/\(shell.id)/resize", method: .post, headers: json, body: ByteBuffer(string: #"{"cols":120,"rows":40}"#))
            #expect(resize.status == .noContent)
            #expect(try decode(Shell.self, try await client.execute(uri: "/v1/workspaces/h/shells/\(shell.id)", method: .get)).cols == 120)
            let cases: [(String, HTTPRequest.Method, String?, Int, String)] = [
                ("/v1/workspaces/h/shells/\(shell.id)/ws", .get, nil, 426, "WebSocket upgrade"),
                ("/v1/workspaces/h/shells/nope", .get, nil, 400, "not a shell id"),
                ("/v1/workspaces/h/shells/shell_0000000000000000", .get, nil, 404, "no shell"),
                ("/v1/workspaces/h/shells/\(shell.id)/resize", .post, #"{"cols":0,"rows":10}"#, 400, "cols and rows"),
                ("/v1/workspaces/h/shells/\(shell.id)/resize", .post, #"{"cols":"wide"}"#, 400, "cols"),
                ("/v1/workspaces/h/shells", .post, #"{"cols":-3}"#, 400, "cols and rows"),
                ("/v1/workspaces/h/shells", .post, #"{"command":"/nope"}"#, 400, "/nope"),
                ("/v1/workspaces/absent/shells", .post, "{}", 404, "no workspace"),
            ]
            for (uri, method, body, status, detail) in cases {
                let response = try await client.execute(uri: uri, method: method, headers: body == nil ? [:] : json, body: body.map { ByteBuffer(string: $0) })
                #expect(response.status.code == status, "\(method) \(uri)")
                #expect(try decode(Problem.self, response).detail.contains(detail), "\(method) \(uri)")
            }
            #expect(try await client.execute(uri: "/v1/workspaces/h/shells/\(shell.id)", method: .delete).status == .noContent)
            #expect(try await client.execute(uri: "/v1/workspaces/h/shells/\(shell.id)", method: .get).status == .notFound)
        }
    }

    @Test func aWebSocketCarriesBytesAndSurvivesBadFrames() async throws {
        try await withLiveServer { client, _ in
            let shell = try await openShell(client, "w", #"{"command":"/bin/bash","args":["--norc","-i"],"cols":80,"rows":24}"#)
            let path = "/v1/workspaces/w/shells/\(shell.id)/ws"
            let transcript = Transcript()
            try await client.ws(path, configuration: .init(maxFrameSize: 4 << 20)) { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                func until(_ text: String) async throws { try await transcript.read(&messages, until: text) }
                try await outbound.write(.binary(ByteBuffer(string: "echo one-$((0+1))\n")))
                try await until("one-1")
                // Garbage text frames are refused with an error frame; the shell goes on.
                try await outbound.write(.text("this is not json"))
                try await until("<text:{\"type\":\"error\"")
                try await outbound.write(.text(#"{"type":"resize","cols":99,"rows":33}"#))
                try await outbound.write(.binary(ByteBuffer(string: "stty size; echo two-$((1+1))\n")))
                try await until("two-2")
                // An oversize frame ends this connection, not the shell.
                try await outbound.write(.binary(ByteBuffer(repeating: 0x61, count: 2 << 20)))
                while let _ = try? await messages.next() {}
            }
            #expect(transcript.text.contains("one-1"))
            #expect(transcript.text.contains("33 99"), "\(transcript.text)")
            #expect(transcript.text.contains("\"type\":\"error\""))

            // The shell still runs; two clients attached at once both see its output, then its exit.
            let a = Transcript(), b = Transcript()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, record) in [a, b].enumerated() {
                    group.addTask {
                        try await client.ws(path) { inbound, outbound, _ in
                            if index == 0 {
                                try await Task.sleep(for: .milliseconds(300))
                                try await outbound.write(.binary(ByteBuffer(string: "echo three-$((1+2)); exit 3\n")))
                            }
                            for try await message in inbound.messages(maxSize: 1 << 20) {
                                switch message {
                                case .binary(let bytes): record.append(String(buffer: bytes))
                                case .text(let text): record.append("<text:\(text)>")
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            for record in [a, b] {
                #expect(record.text.contains("three-3"), "\(record.text)")
                #expect(record.text.contains(#"<text:{"exitCode":3,"type":"exit"}>"#), "\(record.text)")
            }
        }
    }
}

@Suite("Shell routes for a reader", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct ShellReaderTests {
    @Test func aReaderWatchesAShellButCannotTypeIntoItOrResizeIt() async throws {
        try await withLiveServer(token: "server-secret") { client, manager in
            let admin: HTTPFields = [.authorization: "Bearer server-secret", .contentType: "application/json"]
            _ = try await client.execute(uri: "/v1/workspaces/r", method: .put, headers: admin)
            let opened = try await client.execute(
                uri: "/v1/workspaces/r/shells", method: .post, headers: admin, body: ByteBuffer(string: #"{"command":"/bin/sh","cols":80,"rows":24}"#))
            let shell = try decode(Shell.self, opened)
            let reader = try await manager.createAccessToken(TokenCreateRequest(workspaces: ["r"], role: .reader))
            let transcript = Transcript()
            try await client.ws("/v1/workspaces/r/shells/\(shell.id)/ws?access_token=\(reader.token!)") { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                func until(_ text: String) async throws { try await transcript.read(&messages, until: text) }
                // Typed and resized by the reader: both refused.
                try await outbound.write(.binary(ByteBuffer(string: "echo reader > /workspace/reader-was-here; echo typed-$((2+2))\n")))
                try await until("may only watch")
                try await outbound.write(.text(#"{"type":"resize","cols":120,"rows":40}"#))
                try await until("<text:{\"type\":\"error\"")
                // What the owner types, the reader sees.
                let input = try await client.execute(
                    uri: "/v1/workspaces/r/shells/\(shell.id)/input", method: .post, headers: admin, body: ByteBuffer(string: "echo owner-$((3+3))\n"))
                #expect(input.status == .noContent)
                try await until("owner-6")
            }
            #expect(!transcript.text.contains("typed-4"), "\(transcript.text)")
            let files = try await client.execute(uri: "/v1/workspaces/r/fs/file?path=/workspace/reader-was-here", method: .get, headers: admin)
            #expect(files.status == .notFound)
            let after = try decode(Shell.self, try await client.execute(uri: "/v1/workspaces/r/shells/\(shell.id)", method: .get, headers: admin))
            #expect(after.cols == 80 && after.rows == 24)
        }
    }
}

/// Text collected from a WebSocket, readable after the connection ends.
final class Transcript: @unchecked Sendable {
    private let lock = NSLock()
    private var value = ""
    var text: String { lock.withLock { value } }
    func append(_ text: String) { lock.withLock { value += text } }

    /// Reads `messages` into this transcript (text frames as `<text:…>`) until it contains `text` or they end.
    func read(_ messages: inout WebSocketInboundMessageStream.AsyncIterator, until text: String) async throws {
        while !self.text.contains(text), let message = try await messages.next() {
            switch message {
            case .binary(let bytes): append(String(buffer: bytes))
            case .text(let text): append("<text:\(text)>")
            }
        }
    }
}
