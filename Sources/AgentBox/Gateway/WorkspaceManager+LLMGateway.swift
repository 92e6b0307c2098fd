import AgentBoxAPI
import AgentBoxStore
import AsyncHTTPClient
import CoreMetrics
import Foundation
import NIOCore
import NIOHTTP1
import Logging
import Synchronization

/// A model call as it reached the gateway: `POST /llm/{provider}{path}`.
public struct LLMGatewayRequest: Sendable {
    public var provider: LLMProvider
    /// The path after `/llm/{provider}` (`/v1/messages`).
    public var path: String
    /// The query, without its `?`.
    public var query: String?
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(provider: LLMProvider, path: String, query: String?, headers: HTTPHeaders, body: ByteBuffer) {
        self.provider = provider
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }
}

/// The gateway's answer: the upstream's status, headers and body (passed through as they come), or the gateway's
/// own refusal in the provider's error format.
public struct LLMGatewayAnswer: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public let body: Body

    public enum Body: Sendable {
        case bytes(ByteBuffer)
        case upstream(LLMGatewayStream)
    }
}

/// The body of an upstream's answer on its way to the workspace: chunk by chunk, metered as it passes; its usage is
/// recorded when it ends, however it ends.
public final class LLMGatewayStream: Sendable {
    private let response: HTTPClientResponse.Body
    private let endpoint: LLMEndpoint
    private let streaming: Bool
    private let record: @Sendable (LLMUsageReading?) async -> Void

    init(response: HTTPClientResponse.Body, endpoint: LLMEndpoint, streaming: Bool, record: @escaping @Sendable (LLMUsageReading?) async -> Void) {
        self.response = response
        self.endpoint = endpoint
        self.streaming = streaming
        self.record = record
    }

    /// Writes every chunk through `write` as it comes. A `write` that throws (the workspace went away) ends the
    /// upstream call; the usage seen so far is recorded either way.
    public func stream(_ write: (ByteBuffer) async throws -> Void) async throws {
        var meter = LLMUsageMeter(endpoint: endpoint, streaming: streaming)
        do {
            for try await chunk in response {
                meter.consume(chunk.readableBytesView)
                try await write(chunk)
            }
        } catch {
            await record(meter.finish())
            throw error
        }
        await record(meter.finish())
    }
}

extension WorkspaceManager {
    /// The variables that point a workspace's processes at the gateway: each configured provider's base URL and the
    /// workspace's key (one of `session`'s own for an agent session). Empty without a gateway, or before the server
    /// listens.
    func llmEnvironment(workspace key: WorkspaceKey, id: String, session: String?) -> [String: String] {
        Self.llmEnvironment(configuration.llmGateway, workspace: key, id: id, session: session)
    }

    static func llmEnvironment(_ gateway: LLMGateway?, workspace key: WorkspaceKey, id: String, session: String?) -> [String: String] {
        guard let gateway, let port = gateway.port else { return [:] }
        var environment: [String: String] = [:]
        let secret = gateway.key(workspace: key, id: id, session: session)
        for provider in gateway.upstreams.keys {
            environment[provider.baseURLVariable] = provider.workspaceBaseURL(port: port)
            environment[provider.keyVariable] = secret
        }
        return environment
    }

    /// Serves one model call: checks the workspace's key, model and budget, forwards it with the real key, and
    /// counts what the provider reports. Never throws: every refusal and failure is an answer in the provider's own
    /// error format.
    public func forwardLLM(_ request: LLMGatewayRequest) async -> LLMGatewayAnswer {
        let provider = request.provider
        guard (try? checkOpen()) != nil else { return Self.llmRefusal(provider, 503, .upstream, "AgentBox is shutting down") }
        guard let gateway = configuration.llmGateway, let upstream = gateway.upstreams[provider] else {
            return Self.llmRefusal(provider, 404, .notFound, "this server's LLM gateway does not serve \(provider.rawValue)")
        }
        guard let endpoint = provider.endpoint(request.path) else {
            return Self.llmRefusal(provider, 404, .notFound, "the LLM gateway does not serve \(request.path.prefix(200))")
        }
        guard let presented = LLMGateway.presentedKey(in: request.headers), let claim = LLMGateway.claim(presented),
            let record = try? await store.workspace(key: claim.workspace), gateway.verify(claim, id: record.id)
        else {
            configuration.metrics.llmRefused.increment()
            return Self.llmRefusal(provider, 401, .authentication, "not a gateway key of a workspace of this server")
        }
        var body = request.body
        guard var fields = Self.jsonObject(body) else {
            return Self.llmRefusal(provider, 400, .invalidRequest, "the body must be a JSON object")
        }
        let model = fields["model"]?.stringValue
        let streaming = fields["stream"] == .bool(true)
        let budget = record.config.llm ?? LLMBudget()
        if let allowed = budget.models {
            guard let model, allowed.contains(model) else {
                configuration.metrics.llmRefused.increment()
                return Self.llmRefusal(
                    provider, 403, .permission,
                    "model '\((model ?? "none").prefix(100))' is not allowed for this workspace (allowed: \(allowed.joined(separator: ", ")))")
            }
        }
        let counted = endpoint != .anthropicCountTokens
        if counted {
            if let refusal = await reserveLLMRequest(record.key, budget: budget) {
                configuration.metrics.llmRefused.increment()
                return Self.llmRefusal(provider, 429, .budget, refusal)
            }
        }
        // Streamed chat completions report usage only when asked to: the gateway asks, so that it can count them.
        if endpoint == .openAIChatCompletions, streaming, fields["stream_options"]?["include_usage"] == nil {
            var options: [String: JSONValue] = [:]
            if case .object(let existing)? = fields["stream_options"] { options = existing }
            options["include_usage"] = .bool(true)
            fields["stream_options"] = .object(options)
            body = ByteBuffer(bytes: JSONValue.object(fields).jsonBytes)
        }

        var outbound = HTTPClientRequest(url: Self.upstreamURL(upstream.url, request.path, request.query))
        outbound.method = .POST
        for header in request.headers where !Self.unforwardedRequestHeaders.contains(header.name.lowercased()) {
            outbound.headers.add(name: header.name, value: header.value)
        }
        switch provider {
        case .anthropic: outbound.headers.replaceOrAdd(name: "x-api-key", value: upstream.key)
        case .openai: outbound.headers.replaceOrAdd(name: "authorization", value: "Bearer \(upstream.key)")
        }
        outbound.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        outbound.body = .bytes(body)
        configuration.metrics.llmForwarded.increment()

        let workspace = record.key, workspaceID = record.id
        let session = claim.session, requestModel = model ?? "unknown"
        let recordUsage: @Sendable (LLMUsageReading?) async -> Void = { [weak self] reading in
            guard counted, let self else { return }
            await self.recordLLMUsage(workspace, id: workspaceID, session: session, model: reading?.model ?? requestModel, reading: reading)
        }
        let response: HTTPClientResponse
        do {
            response = try await gateway.client.execute(outbound, timeout: .hours(2))
        } catch {
            await recordUsage(nil)
            let timedOut = (error as? HTTPClientError) == .readTimeout || (error as? HTTPClientError) == .deadlineExceeded
            logger.notice("an LLM call failed upstream", metadata: ["workspace.key": "\(workspace)", "error": "\(error)"])
            return timedOut
                ? Self.llmRefusal(provider, 504, .timeout, "the upstream did not answer in time")
                : Self.llmRefusal(provider, 502, .upstream, "the upstream could not be reached")
        }
        var headers = HTTPHeaders()
        for header in response.headers where !Self.unforwardedResponseHeaders.contains(header.name.lowercased()) {
            headers.add(name: header.name, value: header.value)
        }
        let answerStreaming = response.headers.first(name: "content-type")?.lowercased().hasPrefix("text/event-stream") ?? streaming
        return LLMGatewayAnswer(
            status: Int(response.status.code), headers: headers,
            body: .upstream(LLMGatewayStream(response: response.body, endpoint: endpoint, streaming: answerStreaming, record: recordUsage)))
    }

    // MARK: Usage and budgets

    /// Counts one more request of workspace `key` against its budget, or says why it may not be made.
    private func reserveLLMRequest(_ key: WorkspaceKey, budget: LLMBudget) async -> String? {
        do {
            _ = try await llmTotals(key, keep: true)
        } catch {
            return "the workspace's usage cannot be read now"
        }
        // Checked and counted at once: requests under way count, so concurrent ones cannot all pass the last free one.
        return llmUsageCache.withLock { cache -> String? in
            guard let totals = cache[key] else { return "the workspace's usage cannot be read now" }
            if let max = budget.maxRequests, totals.requests >= max { return "this workspace has used its budget of \(max) requests" }
            if let max = budget.maxInputTokens, totals.inputTokens >= max { return "this workspace has used its budget of \(max) input tokens" }
            if let max = budget.maxOutputTokens, totals.outputTokens >= max { return "this workspace has used its budget of \(max) output tokens" }
            cache[key]?.requests += 1
            return nil
        }
    }

    /// Records the end of a counted call of workspace `key` (whose record id is `id`): one request, and the tokens the
    /// provider reported. Nothing is stored when the workspace was deleted meanwhile (a workspace made again under
    /// the same key starts from nothing).
    private func recordLLMUsage(_ key: WorkspaceKey, id: String, session: String?, model: String, reading: LLMUsageReading?) async {
        let figures = LLMUsageFigures(
            requests: 1, inputTokens: reading?.inputTokens ?? 0, outputTokens: reading?.outputTokens ?? 0,
            cacheReadTokens: reading?.cacheReadTokens ?? 0, cacheWriteTokens: reading?.cacheWriteTokens ?? 0)
        let metrics = configuration.metrics
        metrics.llmInputTokens.increment(by: figures.inputTokens)
        metrics.llmOutputTokens.increment(by: figures.outputTokens)
        metrics.llmCacheReadTokens.increment(by: figures.cacheReadTokens)
        metrics.llmCacheWriteTokens.increment(by: figures.cacheWriteTokens)
        llmUsageCache.withLock { cache in
            guard var usage = cache[key] else { return }
            // The request was counted when it was let through.
            var tokens = figures
            tokens.requests = 0
            usage.add(tokens)
            usage.byModel[model, default: LLMUsageFigures()].add(figures)
            if let session { usage.bySession[session, default: LLMUsageFigures()].add(figures) }
            cache[key] = usage
        }
        do {
            guard try await store.workspace(key: key)?.id == id else { return }
            try await store.addLLMUsage(figures, of: key, session: session, model: model)
        } catch {
            logger.error("an LLM call's usage could not be recorded", metadata: ["workspace.key": "\(key)", "error": "\(error)"])
        }
    }

    /// Workspace `key`'s model usage: from memory when the gateway holds it, else from the store. With `keep` (the
    /// gateway's own calls), what is read is kept in memory from then on; readers of usage do not fill the memory, so
    /// only workspaces that use the gateway cost any.
    func llmTotals(_ key: WorkspaceKey, keep: Bool = false) async throws -> LLMUsage {
        if let cached = llmUsageCache.withLock({ $0[key] }) { return cached }
        var usage = LLMUsage()
        for row in try await store.llmUsage(of: key) {
            usage.add(row.figures)
            usage.byModel[row.model, default: LLMUsageFigures()].add(row.figures)
            if let session = row.session { usage.bySession[session, default: LLMUsageFigures()].add(row.figures) }
        }
        guard keep else { return usage }
        return llmUsageCache.withLock { cache in
            if let raced = cache[key] { return raced }
            cache[key] = usage
            return usage
        }
    }

    /// Forgets workspace `key`'s usage (it was deleted).
    func forgetLLMUsage(_ key: WorkspaceKey) {
        llmUsageCache.withLock { _ = $0.removeValue(forKey: key) }
    }

    // MARK: Wire details

    /// Hop-by-hop headers, and the ones the gateway sets itself (the key; the length; identity encoding, so that the
    /// meter reads the body).
    static let unforwardedRequestHeaders: Set<String> = [
        "host", "content-length", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "x-api-key", "authorization", "accept-encoding",
    ]
    static let unforwardedResponseHeaders: Set<String> = ["connection", "keep-alive", "transfer-encoding", "trailer", "upgrade", "proxy-connection"]

    static func upstreamURL(_ base: URL, _ path: String, _ query: String?) -> String {
        var text = base.absoluteString
        while text.hasSuffix("/") { text.removeLast() }
        return text + path + (query.map { "?" + $0 } ?? "")
    }

    static func jsonObject(_ body: ByteBuffer) -> [String: JSONValue]? {
        guard case .object(let fields)? = try? JSONValue.parse(Array(body.readableBytesView)) else { return nil }
        return fields
    }

    /// The answer to a request body larger than ``LLMGateway/maxRequestBytes``.
    public static func llmTooLarge(_ provider: LLMProvider) -> LLMGatewayAnswer {
        llmRefusal(provider, 413, .invalidRequest, "the request body is larger than \(LLMGateway.maxRequestBytes >> 20) MiB")
    }

    enum LLMRefusalKind {
        case notFound, authentication, invalidRequest, permission, budget, timeout, upstream
    }

    /// A refusal in `provider`'s error format. A budget refusal tells the SDKs not to retry (`x-should-retry: false`,
    /// which Anthropic's and OpenAI's SDKs honour; OpenAI's `insufficient_quota` is final to Codex as well).
    static func llmRefusal(_ provider: LLMProvider, _ status: Int, _ kind: LLMRefusalKind, _ message: String) -> LLMGatewayAnswer {
        let body: JSONValue
        switch provider {
        case .anthropic:
            let type =
                switch kind {
                case .notFound: "not_found_error"
                case .authentication: "authentication_error"
                case .invalidRequest: "invalid_request_error"
                case .permission: "permission_error"
                case .budget: "rate_limit_error"
                case .timeout: "timeout_error"
                case .upstream: "api_error"
                }
            body = ["type": "error", "error": ["type": .string(type), "message": .string(message)]]
        case .openai:
            let (type, code): (String, String?) =
                switch kind {
                case .notFound: ("invalid_request_error", "not_found")
                case .authentication: ("invalid_request_error", "invalid_api_key")
                case .invalidRequest: ("invalid_request_error", nil)
                case .permission: ("invalid_request_error", "model_not_found")
                case .budget: ("insufficient_quota", "insufficient_quota")
                case .timeout: ("server_error", "timeout")
                case .upstream: ("server_error", nil)
                }
            body = ["error": ["message": .string(message), "type": .string(type), "param": .null, "code": code.map { .string($0) } ?? .null]]
        }
        var headers = HTTPHeaders([("content-type", "application/json")])
        if kind == .budget || kind == .permission || kind == .authentication { headers.add(name: "x-should-retry", value: "false") }
        return LLMGatewayAnswer(status: status, headers: headers, body: .bytes(ByteBuffer(bytes: body.jsonBytes)))
    }
}
