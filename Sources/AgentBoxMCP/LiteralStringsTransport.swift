import AgentBox
import AgentBoxAPI
import Foundation
import Logging
import MCP
import Synchronization

/// A transport in front of another that keeps the strings of tool calls exactly as they were, both ways.
///
/// The SDK passes every request and every result through `MCP.Value`, which reads a string that looks like a `data:`
/// URL as bytes and writes those bytes back as a different string: `"data: [1,2]\n"` (the start of many a YAML file)
/// becomes `"data: [1;base64,Ml0K"`, and nothing can turn it back. So:
/// - **In:** a `tools/call` whose arguments hold a string starting with `data:` gets its arguments as their JSON text,
///   in the single argument ``rawArgumentsKey``, which ``AgentBoxMCPServer`` hands to the tools as it came.
/// - **Out:** a result holding such a string is kept in ``ExactResults`` by the handler, which returns a placeholder
///   naming it; when the placeholder's reply goes out, this sends the kept result in its place.
/// Everything else passes through untouched.
actor LiteralStringsTransport: Transport {
    /// The one argument that carries the client's arguments as JSON text.
    static let rawArgumentsKey = "_agentboxRawArguments"

    nonisolated let logger: Logger
    private let inner: any Transport
    private let exactResults: ExactResults
    private let messages: AsyncThrowingStream<Data, any Error>
    private let continuation: AsyncThrowingStream<Data, any Error>.Continuation
    private var forwarding: Task<Void, Never>?
    /// The ids (as JSON text) of the client's requests not answered yet: when the client's side ends (stdin closed),
    /// they are answered before the server stops, rather than dropped.
    private var outstanding: [String: Int] = [:]
    private var drained: CheckedContinuation<Void, Never>?
    /// The longest the server waits for those answers once the client's side ended (an exec may take 10 minutes).
    static let drainLimit = Duration.seconds(660)
    /// The answer to a message that is not JSON: JSON-RPC's parse error, whose id is null (the id cannot be read).
    static let parseError = Data(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error: the message is not JSON"}}"#.utf8)

    init(_ inner: any Transport, exactResults: ExactResults, logger: Logger) {
        self.inner = inner
        self.exactResults = exactResults
        self.logger = logger
        (messages, continuation) = AsyncThrowingStream<Data, any Error>.makeStream()
    }

    func connect() async throws {
        try await inner.connect()
        let source = await inner.receive()
        let continuation = continuation
        // One message at a time, as they come: this adds no buffer of its own beyond the inner transport's.
        forwarding = Task {
            do {
                for try await message in source {
                    guard let parsed = try? JSONValue.parse(message) else {
                        try? await inner.send(Self.parseError)
                        continue
                    }
                    if let refusal = Self.invalidRequest(parsed) {
                        try? await inner.send(refusal)
                        continue
                    }
                    noteRequests(in: parsed)
                    continuation.yield(Self.preservingArguments(message, parsed: parsed))
                }
                await drain()
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
    }

    /// JSON-RPC's answer to a message that is JSON but not a request, notification or response (`{}`, `42`, `[]`, a
    /// request whose id is `null`, `7.5` or an object): `-32600` with the message's id when it has a usable one, else
    /// null. The SDK answered these with an id of its own making, or not at all. `nil` for a message to pass on.
    static func invalidRequest(_ message: JSONValue) -> Data? {
        func refusal(_ id: JSONValue, _ why: String) -> Data {
            let answer: JSONValue = ["jsonrpc": "2.0", "id": id, "error": ["code": -32600, "message": .string("Invalid Request: \(why)")]]
            return Data(answer.jsonBytes)
        }
        switch message {
        case .array(let items):
            return items.isEmpty ? refusal(.null, "an empty batch") : nil
        case .object(let fields):
            let id = fields["id"]
            if fields["method"]?.stringValue != nil {
                if let id, !answerable(id) { return refusal(.null, "a request's id is a string or a whole number") }
                return nil
            }
            if fields["result"] != nil || fields["error"] != nil { return nil }
            return refusal(id.flatMap { answerable($0) ? $0 : nil } ?? .null, "no method")
        default:
            return refusal(.null, "a message is an object or a batch")
        }
    }

    /// Records the requests in `message` (one, or a batch) as outstanding; a `notifications/cancelled` takes its
    /// request off (no answer comes for it).
    private func noteRequests(in message: JSONValue) {
        for item in Self.items(of: message) {
            guard case .object(let fields) = item, let method = fields["method"]?.stringValue else { continue }
            if let id = fields["id"], Self.answerable(id) {
                outstanding[id.jsonText, default: 0] += 1
            } else if method == "notifications/cancelled", let id = fields["params"]?["requestId"] {
                answered(id.jsonText)
            }
        }
    }

    /// Takes the answers in `message` (one, or a batch) off the outstanding requests.
    private func noteAnswers(in message: Data) {
        guard !outstanding.isEmpty, let parsed = try? JSONValue.parse(message) else { return }
        for item in Self.items(of: parsed) {
            guard case .object(let fields) = item, fields["method"] == nil, let id = fields["id"] else { continue }
            answered(id.jsonText)
        }
    }

    /// An id the SDK answers with itself: a string, or a whole number it holds as an `Int` (it answers what it
    /// cannot read with an id of its own, which would leave such a request waiting for ``drainLimit``).
    static func answerable(_ id: JSONValue) -> Bool {
        switch id {
        case .string: true
        case .number(let number): number.rounded() == number && abs(number) < 9.2e18
        default: false
        }
    }

    private func answered(_ id: String) {
        guard let count = outstanding[id] else { return }
        outstanding[id] = count > 1 ? count - 1 : nil
        if outstanding.isEmpty { releaseDrain() }
    }

    /// Returns once every outstanding request is answered, or after ``drainLimit``.
    private func drain() async {
        guard !outstanding.isEmpty else { return }
        let limit = Task { [weak self] in
            try? await Task.sleep(for: Self.drainLimit)
            await self?.releaseDrain()
        }
        await withCheckedContinuation { drained = $0 }
        limit.cancel()
    }

    /// Lets ``drain()`` return: every request answered, or its limit reached.
    private func releaseDrain() {
        if let waiter = drained {
            drained = nil
            waiter.resume()
        }
    }

    private static func items(of message: JSONValue) -> [JSONValue] {
        if case .array(let batch) = message { return batch }
        return [message]
    }

    func disconnect() async {
        forwarding?.cancel()
        continuation.finish()
        await inner.disconnect()
    }

    func send(_ data: Data) async throws {
        defer { noteAnswers(in: data) }
        try await inner.send(exactResults.restore(in: data) ?? data)
    }

    nonisolated func receive() -> AsyncThrowingStream<Data, any Error> {
        messages
    }

    /// `message`, with the arguments of a `tools/call` request in it carried as text when the SDK would change them.
    static func preservingArguments(_ message: Data) -> Data {
        // AgentBox's own reader: strict, bounded in depth, about a microsecond for a small message.
        guard let parsed = try? JSONValue.parse(message) else { return message }
        return preservingArguments(message, parsed: parsed)
    }

    /// ``preservingArguments(_:)`` of `message`, already parsed as `parsed`.
    static func preservingArguments(_ message: Data, parsed: JSONValue) -> Data {
        switch parsed {
        case .object:
            guard let rewritten = rewrite(parsed) else { return message }
            return Data(rewritten.jsonBytes)
        case .array(let batch):
            // A batch (protocol 2025-03-26) is rewritten element by element.
            var changed = false
            let items = batch.map { item -> JSONValue in
                guard let rewritten = rewrite(item) else { return item }
                changed = true
                return rewritten
            }
            return changed ? Data(JSONValue.array(items).jsonBytes) : message
        default:
            return message
        }
    }

    /// The request with its arguments as text, or `nil` when it is no `tools/call` that needs it. Also: an
    /// `initialize` whose client capabilities have `experimental` entries that are objects (as the specification has
    /// them, and as Codex sends `{"codex/auth-change": {}}`) loses them, since the SDK reads that field as strings only
    /// and would refuse the whole handshake; this server uses no experimental capability of its clients.
    private static func rewrite(_ request: JSONValue) -> JSONValue? {
        if case .object(var fields) = request, fields["method"] == "initialize", case .object(var params)? = fields["params"],
            case .object(var capabilities)? = params["capabilities"], case .object(let experimental)? = capabilities["experimental"],
            experimental.values.contains(where: { $0.stringValue == nil })
        {
            capabilities["experimental"] = nil
            params["capabilities"] = .object(capabilities)
            fields["params"] = .object(params)
            return .object(fields)
        }
        guard case .object(var fields) = request, fields["method"] == "tools/call", case .object(var params)? = fields["params"],
            let arguments = params["arguments"], holdsDataURLLikeString(arguments)
        else { return nil }
        // The request goes back out as JSON text with its id as a double: an integer id too large for one to hold
        // exactly would come back different, and its answer would find no waiter. Such a request is left as it is.
        if case .number(let id)? = fields["id"], abs(id) >= 1e15 { return nil }
        params["arguments"] = .object([rawArgumentsKey: .string(arguments.jsonText)])
        fields["params"] = .object(params)
        return .object(fields)
    }

    private static func holdsDataURLLikeString(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let text): text.hasPrefix("data:")
        case .array(let items): items.contains(where: holdsDataURLLikeString)
        case .object(let fields): fields.values.contains(where: holdsDataURLLikeString)
        default: false
        }
    }
}

/// Tool results that the SDK would change on their way out, kept from the handler that made them until the transport
/// sends them (see ``LiteralStringsTransport``). Bounded: a result whose reply is never sent (its session ended) is
/// dropped once ``capacity`` newer ones are kept.
final class ExactResults: Sendable {
    /// The `_meta` key of the placeholder result that names a kept one.
    static let metaKey = "agentbox/exactResult"
    static let capacity = 64

    private let kept = Mutex<[(token: String, result: Data)]>([])

    /// `result` itself when the SDK carries it unchanged; else a placeholder naming it, kept as JSON text.
    func passable(_ result: CallTool.Result) throws -> CallTool.Result {
        let texts = result.content.compactMap { content -> String? in
            if case .text(let text, _, _) = content { return text }
            return nil
        }
        guard texts.contains(where: { $0.hasPrefix("data:") }) || result.structuredContent.map(Self.holdsDataURLLikeString) == true else {
            return result
        }
        let token = RandomID.make(prefix: "", length: 20)
        let encoded = try JSONEncoder().encode(result)  // MCP.Value writes strings as they are; only reading changes them
        kept.withLock { kept in
            if kept.count >= Self.capacity { kept.removeFirst() }
            kept.append((token, encoded))
        }
        return CallTool.Result(content: [], _meta: Metadata(additionalFields: [Self.metaKey: .string(token)]))
    }

    /// The reply `message` with the kept result in place of its placeholder, or `nil` when it holds none.
    func restore(in message: Data) -> Data? {
        guard message.range(of: Data(Self.metaKey.utf8)) != nil,
            let reply = try? JSONDecoder().decode(PlaceholderReply.self, from: message),
            let token = reply.result._meta?[Self.metaKey]?.stringValue,
            let result = kept.withLock({ kept -> Data? in
                guard let index = kept.firstIndex(where: { $0.token == token }) else { return nil }
                return kept.remove(at: index).result
            }),
            let id = try? JSONEncoder().encode(reply.id)
        else { return nil }
        return Data(#"{"jsonrpc":"2.0","id":"#.utf8) + id + Data(#","result":"#.utf8) + result + Data("}".utf8)
    }

    private struct PlaceholderReply: Decodable {
        struct Result: Decodable {
            var _meta: [String: Value]?
        }

        var id: ID
        var result: Result
    }

    private static func holdsDataURLLikeString(_ value: Value) -> Bool {
        switch value {
        case .string(let text): text.hasPrefix("data:")
        case .data: true
        case .array(let items): items.contains(where: holdsDataURLLikeString)
        case .object(let fields): fields.values.contains(where: holdsDataURLLikeString)
        default: false
        }
    }
}
