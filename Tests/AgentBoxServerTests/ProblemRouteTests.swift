import AgentBox
import AgentBoxAPI
import Foundation
import Logging
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import AgentBoxServer

/// Requests that reached a 500 (or nothing) before security issue #17 get the 4xx that says what is wrong, with a
/// typed problem; internal failures tell the client nothing of the server's insides.
@Suite("Problems")
struct ProblemRouteTests {
    @Test func limitsAndSizesAreRefusedWithTheirOwnProblems() async throws {
        try await withServer(sandbox: true) { client, _ in
            // A workspace that could run nothing: 400, not a workspace whose every exec fails.
            for pids in [1, 7] {
                let tooFew = try await client.execute(
                    uri: "/v1/workspaces/few", method: .put, headers: json, body: ByteBuffer(string: #"{"limits":{"pids":\#(pids)}}"#))
                #expect(try expectProblem(tooFew, .badRequest).contains("limits.pids"))
            }
            // An env larger than a process can start with: 413 when the workspace is made, not 500 at each exec.
            let big = String(repeating: "x", count: 70_000)
            let env = try await client.execute(uri: "/v1/workspaces/env", method: .put, headers: json, body: ByteBuffer(string: #"{"env":{"BIG":"\#(big)"}}"#))
            try expectProblem(env, .contentTooLarge)
            let many = (0..<600).map { #""K\#($0)":"\#(String(repeating: "v", count: 120))""# }.joined(separator: ",")
            let manyEnv = try await client.execute(uri: "/v1/workspaces/env", method: .put, headers: json, body: ByteBuffer(string: "{\"env\":{\(many)}}"))
            try expectProblem(manyEnv, .contentTooLarge)
            let missing = try await client.execute(uri: "/v1/workspaces/env", method: .get)
            try expectProblem(missing, .notFound)
            // Arguments and an exec's own env over what one start carries: 413.
            _ = try await client.execute(uri: "/v1/workspaces/args", method: .put, headers: json, body: ByteBuffer(string: "{}"))
            let longArgs = try await client.execute(
                uri: "/v1/workspaces/args/exec", method: .post, headers: json,
                body: ByteBuffer(string: #"{"command":"true \#(String(repeating: "a", count: 250_000))"}"#))
            try expectProblem(longArgs, .contentTooLarge)
            let longEnv = try await client.execute(
                uri: "/v1/workspaces/args/processes", method: .post, headers: json,
                body: ByteBuffer(string: #"{"command":"true","env":{"A":"\#(String(repeating: "a", count: 100_000))","B":"\#(String(repeating: "b", count: 100_000))"}}"#))
            try expectProblem(longEnv, .contentTooLarge)
            // The workspace still works.
            let ok = try await client.execute(uri: "/v1/workspaces/args/exec", method: .post, headers: json, body: ByteBuffer(string: #"{"command":"echo fine"}"#))
            #expect(try decode(ExecResult.self, ok).stdout == "fine\n")
        }
    }

    /// A workspace at its process limit: starting one more is 429 (it was a 500 with the supervisor's errno text).
    @Test func aStartAtTheProcessLimitIs429() async throws {
        try await withServer(sandbox: true) { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/full", method: .put, headers: json, body: ByteBuffer(string: #"{"limits":{"pids":8}}"#))
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<12 {
                let response = try await client.execute(
                    uri: "/v1/workspaces/full/processes", method: .post, headers: json, body: ByteBuffer(string: #"{"command":"sleep","args":["60"]}"#))
                statuses.append(response.status)
                if response.status == .tooManyRequests {
                    let detail = try expectProblem(response, .tooManyRequests)
                    #expect(detail.contains("limits.pids"), "\(detail)")
                    break
                }
            }
            #expect(statuses.last == .tooManyRequests, "\(statuses)")
            #expect(!statuses.contains(.internalServerError), "\(statuses)")
        }
    }

    @Test func internalErrorsCarryAReferenceNotTheirText() throws {
        struct Leaky: Error, CustomStringConvertible {
            var description: String { "open /var/lib/agentbox/workspaces/1234/secret: permission denied" }
        }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        for error in [Leaky() as any Error, AgentBoxError(.internalError, "cannot open /srv/data/agentbox.sqlite", underlyingError: Leaky())] {
            let problem = ProblemError.from(error, logger: logger).problem
            #expect(problem.status == 500 && problem.type == ProblemType.internalError)
            #expect(!problem.detail.contains("/"), "\(problem.detail)")
            #expect(problem.detail.contains("reference"), "\(problem.detail)")
        }
        let known = ProblemError.from(AgentBoxError(.limitReached, "the workspace runs as many processes as it may"), logger: logger).problem
        #expect(known.status == 429 && known.type == ProblemType.limitReached)
    }

    /// A body that stops being HTTP while a route reads it (a chunk size that is not hex) is a 400 (it was a 500 for a
    /// file and a 413 for JSON); a number that fits no field is named (Foundation calls it "not valid JSON").
    @Test func aBrokenChunkedBodyIs400AndANumberThatFitsNoFieldIsNamed() async throws {
        try await withLiveServer { client, _ in
            let port = try #require(client.port)
            _ = try await client.execute(uri: "/v1/workspaces/chunky", method: .put, headers: json, body: ByteBuffer(string: "{}"))
            for path in ["/v1/workspaces/chunky/fs/file?path=/workspace/c", "/v1/workspaces/chunky"] {
                let raw = try RawConnection(port: port)
                defer { raw.close() }
                let answer = await raw.exchangeOffThePool(
                    "PUT \(path) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
                #expect(answer.hasPrefix("HTTP/1.1 400") && answer.contains("not valid HTTP"), "\(path): \(answer)")
            }
        }
        try await withServer { client, _ in
            let big = try await client.execute(uri: "/v1/workspaces/n", method: .put, headers: json, body: ByteBuffer(string: #"{"limits":{"memoryMb":1e30}}"#))
            #expect(try expectProblem(big, .badRequest).contains("'limits.memoryMb'"))
            // A hostile body of many such numbers under a long key: the account stays short (its walk is bounded).
            let key = String(repeating: "k", count: 100_000)
            let many = "{\"limits\":{\"memoryMb\":1e30},\"x\":{\"\(key)\":[" + Array(repeating: "1.5", count: 100_000).joined(separator: ",") + "]}}"
            let hostile = try await client.execute(uri: "/v1/workspaces/n", method: .put, headers: json, body: ByteBuffer(string: many))
            let detail = try expectProblem(hostile, .badRequest)
            #expect(detail.utf8.count < 1000 && detail.contains("does not fit"), "\(detail.prefix(300))")
            let broken = try await client.execute(uri: "/v1/workspaces/n", method: .put, headers: json, body: ByteBuffer(string: #"{"limits":"#))
            #expect(try expectProblem(broken, .badRequest).contains("invalid JSON at byte 10"))
        }
    }

    /// A JSON body whose declared length is past the limit is refused at once, before any of it is read (it waited for
    /// a megabyte that might never come, and a stalled body ended unanswered at the client timeout).
    @Test(.enabled(if: canSandbox, "needs bubblewrap and root"))
    func aDeclaredLengthPastTheLimitIs413AtOnce() async throws {
        // Read until the answer is there (the body never comes; the default client timeout is far off): with half-second
        // timeouts, a loaded machine closed the connection before the route ran.
        try await withLiveServer { client, _ in
            let port = try #require(client.port)
            let answer = try await ProcessFollowRouteTests.read(
                port, "PUT /v1/workspaces/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{",
                until: { $0.contains("1000000000") })
            #expect(answer.hasPrefix("HTTP/1.1 413") && answer.contains("1000000000"), "\(answer)")
        }
    }

    /// HummingbirdWebSocket's "Error handling upgrade result" (one per connection whose first request was not HTTP)
    /// is a debug line, not an error an unauthenticated client could fill the log with; other lines pass as they are.
    @Test func upgradeNoiseIsDemotedAndTheRestPasses() {
        final class Captured: @unchecked Sendable { var events: [(Logger.Level, String)] = [] }
        struct Capture: LogHandler {
            let captured: Captured
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .info
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) { captured.events.append((event.level, event.message.description)) }
        }
        let captured = Captured()
        let logger = Logger(label: "t") { _ in UpgradeNoiseFilter(inner: Capture(captured: captured)) }
        logger.error("Error handling upgrade result")
        logger.error("request failed")
        logger.info("listening")
        #expect(captured.events.map(\.1) == ["request failed", "listening"])
        var verbose = logger
        verbose.logLevel = .debug
        verbose.error("Error handling upgrade result")
        #expect(captured.events.last?.0 == .debug)
    }
}
