import AgentBox
import AgentBoxAPI
import AgentBoxServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import HummingbirdWSClient
import HummingbirdWSTesting
import NIOCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A client that keeps the server waiting loses its connection (slowloris); the server's own long answers and a
/// WebSocket's quiet moments are never cut. Half-second timeouts here; 60 s in a real server.
@Suite("Client timeouts", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct ClientTimeoutTests {
    static func short(_ server: inout ServerConfiguration) {
        server.clientHeadTimeout = .milliseconds(500)
        server.clientBodyTimeout = .milliseconds(500)
    }

    /// Sends `text`, then reads until the server closes the connection (true) or 10 s pass (false), off the
    /// cooperative pool; what was read.
    static func sendThenAwaitClose(_ port: Int, _ text: String, keepSending: String? = nil) async throws -> (closed: Bool, read: String) {
        let raw = try RawConnection(port: port)
        defer { raw.close() }
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                _ = text.utf8CString.withUnsafeBufferPointer { send(raw.fd, $0.baseAddress, $0.count - 1, 0) }
                var received: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = recv(raw.fd, &buffer, buffer.count, 0)
                    if count == 0 { return continuation.resume(returning: (true, String(decoding: received, as: UTF8.self))) }
                    if count < 0 {
                        // ECONNRESET is a close too; EAGAIN is the 10 s receive timeout.
                        return continuation.resume(returning: (errno == ECONNRESET, String(decoding: received, as: UTF8.self)))
                    }
                    received += buffer[..<count]
                }
            }
        }
    }

    /// One request on a connection of its own (the test client's keep-alive connection would be closed as idle
    /// between calls, and it does not connect again): the answer's status line and body.
    static func call(_ port: Int, _ method: String, _ path: String, _ body: String = "") async throws -> (status: String, body: String) {
        let raw = try RawConnection(port: port)
        defer { raw.close() }
        let answer = await raw.exchangeOffThePool(
            "\(method) \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let parts = answer.components(separatedBy: "\r\n\r\n")
        return (String(parts[0].prefix(while: { $0 != "\r" })), parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test func aHeadThatNeverEndsAndABodyThatNeverComesCloseTheirConnections() async throws {
        try await withLiveServer(server: Self.short) { client, _ in
            let port = try #require(client.port)
            let started = ContinuousClock.now
            let head = try await Self.sendThenAwaitClose(port, "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            #expect(head.closed && head.read.isEmpty, "\(head)")
            let body = try await Self.sendThenAwaitClose(
                port, "PUT /v1/workspaces/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            #expect(body.closed, "\(body)")
            #expect(ContinuousClock.now - started < .seconds(8))
            // An idle keep-alive connection closes after its answer, the same way.
            let idle = try await Self.sendThenAwaitClose(port, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(idle.closed && idle.read.hasPrefix("HTTP/1.1 200"), "\(idle)")
            // The server goes on answering.
            let health = try await Self.call(port, "GET", "/v1/health")
            #expect(health.status.hasPrefix("HTTP/1.1 200"), "\(health)")
        }
    }

    /// A CONNECT is answered 405 and its connection closed at once, token or not (NIO's parser takes what follows it
    /// for a tunnel, so it hung unanswered until the client timeout, and a request behind it was never read).
    @Test func aConnectIsRefusedAndItsConnectionClosedAtOnce() async throws {
        try await withLiveServer(server: { $0.clientHeadTimeout = .seconds(30) }) { client, _ in
            let port = try #require(client.port)
            let started = ContinuousClock.now
            let answer = try await Self.sendThenAwaitClose(
                port, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nGET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(answer.closed && answer.read.hasPrefix("HTTP/1.1 405"), "\(answer)")
            #expect(!answer.read.contains("200 OK"), "\(answer)")
            #expect(ContinuousClock.now - started < .seconds(10))
            let health = try await Self.call(port, "GET", "/v1/health")
            #expect(health.status.hasPrefix("HTTP/1.1 200"), "\(health)")
        }
    }

    @Test(arguments: ["gzip, chunked", "gzip,chunked", "x-custom , chunked"])
    func aTransferCodingOtherThanChunkedIs501AndClosesTheConnection(codings: String) async throws {
        try await withLiveServer(server: { $0.clientHeadTimeout = .seconds(30) }) { client, _ in
            let port = try #require(client.port)
            // NIO's parser reads such a body as chunked and would hand on the gzip's bytes as the file's.
            let answer = try await Self.sendThenAwaitClose(
                port,
                "PUT /v1/workspaces/te/fs/file?path=/home/agent/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \(codings)\r\n\r\n"
                    + "3\r\nabc\r\n0\r\n\r\nGET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(answer.closed && answer.read.hasPrefix("HTTP/1.1 501") && answer.read.contains("transfer coding"), "\(answer)")
            #expect(!answer.read.contains("200 OK"), "\(answer)")
            // Behind a request still owed its answer, the refusal waits for that answer, then the connection closes.
            let behind = try await Self.sendThenAwaitClose(
                port,
                "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/health HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"
                    + "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            let statuses = behind.read.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
            #expect(behind.closed && statuses == ["200", "400"] && behind.read.contains("one Host header"), "\(behind)")
            // Plain chunked is taken, whatever its case.
            let chunked = try await Self.sendThenAwaitClose(
                port,
                "PUT /v1/workspaces/te HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: Chunked\r\n"
                    + "Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            #expect(chunked.read.hasPrefix("HTTP/1.1 20"), "\(chunked)")
        }
    }

    @Test func theServersLongAnswersAndAQuietWebSocketAreNotCut() async throws {
        try await withLiveServer(server: Self.short) { client, _ in
            let port = try #require(client.port)
            let put = try await Self.call(port, "PUT", "/v1/workspaces/long", "{}")
            #expect(put.status.hasPrefix("HTTP/1.1 20"))
            // An exec of 2 s, four timeouts long: answered whole, then the idle connection closes.
            let body = #"{"command":"sleep 2; echo slept"}"#
            let exec = try await Self.sendThenAwaitClose(
                port, "POST /v1/workspaces/long/exec HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            #expect(exec.closed && exec.read.hasPrefix("HTTP/1.1 200") && exec.read.contains("slept"), "\(exec)")
            // A shell's WebSocket quiet for 2 s stays open: the connection is no longer HTTP.
            let opened = try await Self.call(port, "POST", "/v1/workspaces/long/shells", #"{"command":"/bin/sh"}"#)
            let shell = try AgentBoxJSON.makeDecoder().decode(Shell.self, from: Data(opened.body.utf8))
            let transcript = Transcript()
            try await client.ws("/v1/workspaces/long/shells/\(shell.id)/ws") { inbound, outbound, _ in
                var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                try await Task.sleep(for: .seconds(2))
                try await outbound.write(.binary(ByteBuffer(string: "echo awake-$((20+1))\n")))
                while !transcript.text.contains("awake-21"), let message = try await messages.next() {
                    if case .binary(let bytes) = message { transcript.append(String(buffer: bytes)) }
                }
            }
            #expect(transcript.text.contains("awake-21"))
        }
    }
}
