import AgentBox
import AgentBoxStore
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

@testable import AgentBoxServer

/// The preview proxy's channel handler in a pipeline of NIO's testing channels: what reaches the routes, what the
/// client is answered, and when reading goes on. (Relaying to a workspace's server is PreviewRouteTests' part.)
@Suite("Preview proxy handler", .timeLimit(.minutes(1)))
struct PreviewProxyHandlerTests {
    static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()

    /// Runs `body` with a manager of no workspaces (tokens resolve to 404).
    func withManager(_ body: (WorkspaceManager) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-proxy-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let manager = try WorkspaceManager.open(
            configuration: AgentBoxConfiguration(dataDirectory: directory), store: SQLiteStore.open(in: directory), logger: Self.logger)
        do {
            try await body(manager)
        } catch {
            await manager.shutdown()
            throw error
        }
        await manager.shutdown()
    }

    /// A testing channel with the proxy between two spies that write what passes them to `log`.
    func proxyChannel(_ manager: WorkspaceManager, _ log: PipelineLog) async throws -> NIOAsyncTestingChannel {
        try await NIOAsyncTestingChannel { channel in
            try channel.pipeline.syncOperations.addHandler(SocketSpy(log))
            try channel.pipeline.syncOperations.addHandler(PreviewProxyHandler(manager: manager, previewDomain: nil, logger: Self.logger))
            try channel.pipeline.syncOperations.addHandler(RoutesSpy(log))
        }
    }

    /// Delivers `parts` as one read of the socket (so that nothing else runs on the loop in between), then asks to
    /// read more.
    func receive(_ parts: [HTTPServerRequestPart], on channel: NIOAsyncTestingChannel) async throws {
        try await channel.testingEventLoop.executeInContext {
            for part in parts { channel.pipeline.syncOperations.fireChannelRead(NIOAny(part)) }
            channel.pipeline.syncOperations.fireChannelReadComplete()
            channel.pipeline.syncOperations.read()
        }
    }

    @Test func requestsForTheRoutesAndTheirAnswersPassUnchanged() async throws {
        try await withManager { manager in
            let log = PipelineLog()
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandler(SocketSpy(log))
            try channel.pipeline.syncOperations.addHandler(PreviewProxyHandler(manager: manager, previewDomain: nil, logger: Self.logger))
            try channel.pipeline.syncOperations.addHandler(RoutesSpy(log))
            for part in [
                proxyRequest("/v1/health"), .end(nil), proxyRequest("/v1/workspaces", method: .POST), .body(ByteBuffer(string: "{}")), .end(nil),
            ] {
                try channel.writeInbound(part)
            }
            channel.read()
            try channel.writeOutbound(HTTPServerResponsePart.head(.init(version: .http1_1, status: .ok)))
            try channel.writeOutbound(HTTPServerResponsePart.end(nil))
            // A foreign upgrade is a plain request, answered and then the connection closes.
            try channel.writeInbound(proxyRequest("/v1/health", [("host", "x"), ("upgrade", "h2c"), ("connection", "Upgrade")]))
            #expect(
                log.entries == [
                    "routes head GET /v1/health", "routes read complete", "routes end", "routes read complete",
                    "routes head POST /v1/workspaces", "routes read complete", "routes body 2", "routes read complete", "routes end",
                    "routes read complete", "read", "client head 200", "client end", "routes head GET /v1/health", "routes read complete",
                ])
            var forwarded: HTTPServerRequestPart?
            while let part = try channel.readInbound(as: HTTPServerRequestPart.self) { forwarded = part }
            guard case .head(let stripped) = forwarded else {
                Issue.record("the last request reached the routes")
                return
            }
            #expect(!stripped.headers.contains(name: "upgrade") && stripped.headers["connection"] == ["close"])
            _ = try channel.finish()
        }
    }

    @Test func anUnknownTokenIsA404AndARouteRequestPipelinedBehindItWaitsForIt() async throws {
        try await withManager { manager in
            let log = PipelineLog()
            let channel = try await proxyChannel(manager, log)
            try await receive([proxyRequest("/preview/short/x"), .end(nil), proxyRequest("/v1/health"), .end(nil)], on: channel)
            guard case .head(let answer) = try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self) else {
                Issue.record("an answer")
                return
            }
            #expect(answer.status == .notFound && answer.headers["content-type"] == ["application/problem+json"])
            #expect(!answer.headers.contains(name: "connection"))
            guard case .body(.byteBuffer(let body)) = try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self) else {
                Issue.record("a problem")
                return
            }
            #expect(String(buffer: body).contains("404"))
            #expect(try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self) == .end(nil))
            try await channel.testingEventLoop.executeInContext {}
            // The route request went on only after the answer, with a read-complete of its own; then the held read.
            #expect(
                log.entries == [
                    "routes read complete", "client head 404", "client body", "client end", "routes head GET /v1/health", "routes end",
                    "routes read complete", "read",
                ])
            _ = try await channel.finish(acceptAlreadyClosed: true)
        }
    }

    @Test func aPreviewRequestWaitsForTheRoutesAnswerAndAnUnknownTokenGetsNoContinue() async throws {
        try await withManager { manager in
            let log = PipelineLog()
            let channel = try await proxyChannel(manager, log)
            let expecting = proxyRequest("/preview/short/up", method: .POST, [("host", "x"), ("content-length", "2"), ("expect", "100-continue")])
            try await receive([proxyRequest("/v1/health"), .end(nil), expecting], on: channel)
            #expect(log.entries == ["routes head GET /v1/health", "routes end", "routes read complete"], "the routes have their request")
            try await channel.writeOutbound(HTTPServerResponsePart.head(.init(version: .http1_1, status: .ok)))
            try await channel.writeOutbound(HTTPServerResponsePart.end(nil))
            var statuses: [UInt] = []
            while statuses.count < 2 {
                if case .head(let head) = try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self) { statuses.append(head.status.code) }
            }
            // No `100 Continue` for a token that leads nowhere: the client learns it before it sends its body.
            #expect(statuses == [200, 404], "in order: the routes' answer, then the preview's")
            // Given no `100`, the client may or may not send its body: the answer closes the connection, and nothing
            // it sends after is taken for a request.
            try await receive([.body(ByteBuffer(string: "hi")), .end(nil)], on: channel)
            try await receive([proxyRequest("/v1/health"), .end(nil)], on: channel)
            #expect(log.entries.filter { $0.hasPrefix("routes head") || $0.hasPrefix("routes body") } == ["routes head GET /v1/health"])
            _ = try await channel.finish(acceptAlreadyClosed: true)
        }
    }

    @Test func connectionCloseIsAnsweredThenTheConnectionClosesAndNothingAfterItIsAnswered() async throws {
        try await withManager { manager in
            let log = PipelineLog()
            let channel = try await proxyChannel(manager, log)
            try await receive([proxyRequest("/preview/short/", [("host", "x"), ("connection", "close")]), .end(nil), proxyRequest("/v1/health"), .end(nil)], on: channel)
            guard case .head(let answer) = try await channel.waitForOutboundWrite(as: HTTPServerResponsePart.self) else {
                Issue.record("an answer")
                return
            }
            #expect(answer.status == .notFound && answer.headers["connection"] == ["close"])
            try await channel.closeFuture.get()
            #expect(!log.entries.contains("routes head GET /v1/health"), "what was pipelined after it is not answered")
            #expect(!log.entries.contains("read"))
        }
    }
}

// MARK: - Spies

/// What passed the spies of a pipeline, in order (they run on the channel's loop; the test reads from its own task).
final class PipelineLog: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var entries: [String] { lines.withLock { $0 } }
}

/// Next to the socket: the answers written to the client and the reads passed on.
final class SocketSpy: ChannelOutboundHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    let log: PipelineLog

    init(_ log: PipelineLog) { self.log = log }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head): log.append("client head \(head.status.code)")
        case .body: log.append("client body")
        case .end: log.append("client end")
        }
        context.write(data, promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        log.append("read")
        context.read()
    }
}

/// In the routes' place: the request parts and read-completes handed on to them.
final class RoutesSpy: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    let log: PipelineLog

    init(_ log: PipelineLog) { self.log = log }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        log.append("routes " + proxySummary(unwrapInboundIn(data)))
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        log.append("routes read complete")
        context.fireChannelReadComplete()
    }
}
