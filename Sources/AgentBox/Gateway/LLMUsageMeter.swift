// Learns the token usage a model provider reports, from a response body that streams past untouched.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

import AgentBoxAPI

/// The API a request went to; it decides where in the response the usage is written.
enum LLMEndpoint: String, Sendable, Codable, CaseIterable {
    /// `POST /v1/messages` (Anthropic).
    case anthropicMessages
    /// `POST /v1/messages/count_tokens` (Anthropic). Counting tokens generates nothing and costs nothing,
    /// so its `input_tokens` is never usage: the meter reports nil and does not even look at the body.
    case anthropicCountTokens
    /// `POST /v1/responses` (OpenAI).
    case openAIResponses
    /// `POST /v1/chat/completions` (OpenAI).
    case openAIChatCompletions

    /// The provider that serves this endpoint.
    var provider: LLMProvider {
        switch self {
        case .anthropicMessages, .anthropicCountTokens: .anthropic
        case .openAIResponses, .openAIChatCompletions: .openai
        }
    }
}

/// The tokens one model response consumed, in four disjoint buckets that add up to the whole.
///
/// `inputTokens` is always the *uncached* input, for both providers: Anthropic reports it that way
/// (`input_tokens` excludes cache reads and writes), and OpenAI's `input_tokens` / `prompt_tokens`
/// include the cached part, so the meter subtracts `cached_tokens`. Disjoint buckets are what a budget
/// needs, since each is priced differently; ``totalInputTokens`` gives all input when that is wanted.
/// OpenAI reports no cache writes, so `cacheWriteTokens` is 0 for it.
struct LLMUsageReading: Sendable, Equatable, Codable {
    /// Every count is clamped to this (about 10^12), so that sums of counts can never overflow.
    static let maximumTokenCount: Int64 = 1 << 40
    /// A longer model name is cut to this many characters.
    static let maximumModelNameLength = 256

    /// Input tokens read neither from nor into the prompt cache.
    var inputTokens: Int64
    /// Generated tokens, including reasoning or thinking tokens.
    var outputTokens: Int64
    /// Input tokens served from the prompt cache.
    var cacheReadTokens: Int64
    /// Input tokens written to the prompt cache (Anthropic's `cache_creation_input_tokens`).
    var cacheWriteTokens: Int64
    /// The model that answered, as the response names it.
    var model: String?

    /// Creates a usage report; counts are taken as given.
    init(
        inputTokens: Int64, outputTokens: Int64, cacheReadTokens: Int64 = 0, cacheWriteTokens: Int64 = 0,
        model: String? = nil
    ) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cacheReadTokens = cacheReadTokens
        self.cacheWriteTokens = cacheWriteTokens
        self.model = model
    }

    /// All input: uncached, read from the cache and written to it.
    var totalInputTokens: Int64 { inputTokens + cacheReadTokens + cacheWriteTokens }
}

/// Watches a model API response body go by and reports the usage the provider wrote into it.
///
/// Feed it every chunk exactly as it is forwarded, however the chunks happen to be cut (mid-line,
/// mid-event, mid-UTF-8 sequence), then ask for the result once the body has ended:
///
/// ```swift
/// var meter = LLMUsageMeter(endpoint: .anthropicMessages, streaming: contentType == "text/event-stream")
/// for try await chunk in upstreamBody {
///     meter.consume(chunk.readableBytesView)
///     try await writer.write(chunk)
/// }
/// if let usage = meter.finish() { budget.charge(usage) }
/// ```
///
/// Where the usage is read:
/// - Anthropic Messages: `usage` and `model` of the Message body; when streaming, `message.usage` and
///   `message.model` of `message_start`, overwritten field by field by the cumulative `usage` of each
///   `message_delta` (the latest total wins; deltas are never added up).
/// - OpenAI Responses: `usage` and `model` of the response object; when streaming, of the `response` in
///   the terminal `response.completed`, `response.incomplete` or `response.failed` event.
/// - OpenAI Chat Completions: `usage` and `model` of the body; when streaming, of the final chunk, which
///   carries usage only when the request set `stream_options.include_usage`.
/// - Anthropic count_tokens: never (see ``LLMEndpoint/anthropicCountTokens``).
///
/// It holds bounded memory whatever the upstream sends: a streamed line or event longer than
/// ``maximumLineBytes`` is skipped, and a non-streamed body longer than ``maximumBodyBytes`` is not
/// parsed at all (the result is nil). JSON that does not decode, error bodies and error events, and
/// counts that are negative, fractional or not numbers are ignored; it never traps.
///
/// It stays cheap on the hot path: each byte is scanned once, the data of events whose name shows they
/// carry no usage (`content_block_delta`, `ping`, `response.output_text.delta`, …) is not even copied,
/// and an event is decoded only when its data holds a `"usage": {` object.
struct LLMUsageMeter: Sendable {
    /// The longest server-sent-events line, and the largest event data, that is read (1 MiB).
    static let maximumLineBytes = 1 << 20
    /// The largest non-streamed body that is read (8 MiB); a longer one reports no usage.
    static let maximumBodyBytes = 8 << 20

    private let streaming: Bool
    private var scanner = ServerSentEventScanner(maximumLineBytes: Self.maximumLineBytes)
    private var accumulator: UsageAccumulator
    private var body: [UInt8] = []
    private var bodyIsTooLarge = false

    /// Creates a meter for one response.
    ///
    /// - Parameters:
    ///   - endpoint: The API the request went to.
    ///   - streaming: Whether the response is `text/event-stream`; judge by the response's content type,
    ///     not the request's `stream` flag, since errors to streaming requests come back as plain JSON.
    init(endpoint: LLMEndpoint, streaming: Bool) {
        self.streaming = streaming
        self.accumulator = UsageAccumulator(endpoint: endpoint)
    }

    /// Observes the next chunk of the response body.
    mutating func consume(_ bytes: some Sequence<UInt8>) {
        guard accumulator.endpoint != .anthropicCountTokens else { return }
        let handled: Void? = bytes.withContiguousStorageIfAvailable { consume(buffer: $0) }
        if handled == nil {
            Array(bytes).withUnsafeBufferPointer { consume(buffer: $0) }
        }
    }

    /// The usage the body reported, or nil when it reported none (or was not readable within the limits).
    ///
    /// Call it after the last chunk. Streams are read leniently at their end: a last event that lacks its
    /// closing blank line still counts. When a stream reports usage and then fails (an `error` event after
    /// `message_start`), the usage seen so far is reported, because those tokens were consumed.
    func finish() -> LLMUsageReading? {
        var accumulator = accumulator
        if streaming {
            var scanner = scanner
            scanner.finish(into: &accumulator)
        } else if !bodyIsTooLarge {
            accumulator.receiveBody(body)
        }
        return accumulator.usage
    }

    private mutating func consume(buffer: UnsafeBufferPointer<UInt8>) {
        if streaming {
            scanner.scan(buffer, into: &accumulator)
        } else if !bodyIsTooLarge {
            if body.count + buffer.count > Self.maximumBodyBytes {
                bodyIsTooLarge = true
                body = []
            } else {
                body.append(contentsOf: buffer)
            }
        }
    }
}

/// Gathers usage from decoded bodies and stream events of one endpoint.
struct UsageAccumulator: ServerSentEventSink, Sendable {
    /// Events that are frequent and never carry usage; their data is not copied or searched.
    private static let anthropicEventsWithoutUsage = [
        "ping", "content_block_start", "content_block_delta", "content_block_stop", "message_stop",
    ].map { Array($0.utf8) }
    /// Responses events carrying usage hold the whole response object; the incremental ones never do.
    private static let responsesEventSuffixesWithoutUsage = [".delta", ".done", ".added"].map { Array($0.utf8) }

    let endpoint: LLMEndpoint
    private var reading = UsageReading()
    private var model: String?
    private var sawUsage = false

    init(endpoint: LLMEndpoint) {
        self.endpoint = endpoint
    }

    var usage: LLMUsageReading? {
        guard sawUsage else { return nil }
        return LLMUsageReading(
            inputTokens: reading.uncachedInput ?? 0, outputTokens: reading.output ?? 0,
            cacheReadTokens: reading.cacheRead ?? 0, cacheWriteTokens: reading.cacheWrite ?? 0, model: model)
    }

    func wantsData(forEventNamed name: [UInt8]) -> Bool {
        switch endpoint {
        case .anthropicMessages:
            !Self.anthropicEventsWithoutUsage.contains(name)
        case .openAIResponses:
            !Self.responsesEventSuffixesWithoutUsage.contains { suffix in name.ends(with: suffix) }
        case .openAIChatCompletions, .anthropicCountTokens:
            true
        }
    }

    mutating func receive(eventNamed name: [UInt8], data: [UInt8], lastEventID: [UInt8]?) {
        guard containsUsageObject(data) else { return }
        switch endpoint {
        case .anthropicMessages:
            guard let event = decodeLeniently(AnthropicStreamEventWire.self, from: data) else { return }
            // The JSON `type` decides, not the SSE name: Anthropic sends both, equal, and JSON is the one
            // every client reads.
            switch event.type {
            case "message_start": record(event.message?.usage?.reading, model: event.message?.model)
            case "message_delta": record(event.usage?.reading, model: nil)
            default: return
            }
        case .openAIResponses:
            let response = decodeLeniently(OpenAIResponsesStreamEventWire.self, from: data)?.response
            record(response?.usage?.reading, model: response?.model)
        case .openAIChatCompletions:
            let chunk = decodeLeniently(OpenAIModelAndUsageWire.self, from: data)
            record(chunk?.usage?.reading, model: chunk?.model)
        case .anthropicCountTokens:
            return
        }
    }

    mutating func receiveBody(_ body: [UInt8]) {
        guard containsUsageObject(body) else { return }
        switch endpoint {
        case .anthropicMessages:
            let message = decodeLeniently(AnthropicMessageWire.self, from: body)
            record(message?.usage?.reading, model: message?.model)
        case .openAIResponses, .openAIChatCompletions:
            let response = decodeLeniently(OpenAIModelAndUsageWire.self, from: body)
            record(response?.usage?.reading, model: response?.model)
        case .anthropicCountTokens:
            return
        }
    }

    private mutating func record(_ newer: UsageReading?, model newModel: String?) {
        guard let newer, !newer.isEmpty else { return }
        reading.overwrite(with: newer)
        sawUsage = true
        model = boundedModelName(newModel) ?? model
    }
}

/// Whether `json` holds a `"usage"` key whose value is an object: a cheap test that spares decoding the
/// many events that have no usage or `"usage":null`. A `"usage"` inside a JSON string cannot match,
/// since its quotes would be escaped there.
func containsUsageObject(_ json: [UInt8]) -> Bool {
    json.withUnsafeBufferPointer { bytes in
        guard let base = bytes.baseAddress else { return false }
        let end = bytes.count
        var index = 0
        // memchr skips ahead fast; `u` is rarer than `"` in typical event JSON.
        while index < end, let hit = memchr(base + index, Int32(UInt8(ascii: "u")), end - index) {
            let found = UnsafeRawPointer(hit) - UnsafeRawPointer(base)
            index = found + 1
            let keyStart = found - 1
            guard keyStart >= 0, end - keyStart >= usageKey.count,
                UnsafeBufferPointer(rebasing: bytes[keyStart..<(keyStart + usageKey.count)]).elementsEqual(usageKey)
            else { continue }
            var cursor = skipWhitespace(bytes, from: keyStart + usageKey.count)
            guard cursor < end, bytes[cursor] == UInt8(ascii: ":") else { continue }
            cursor = skipWhitespace(bytes, from: cursor + 1)
            if cursor < end, bytes[cursor] == UInt8(ascii: "{") { return true }
        }
        return false
    }
}

private let usageKey = Array(#""usage""#.utf8)

private func skipWhitespace(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int {
    var index = start
    while index < bytes.count {
        switch bytes[index] {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): index += 1
        default: return index
        }
    }
    return index
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
