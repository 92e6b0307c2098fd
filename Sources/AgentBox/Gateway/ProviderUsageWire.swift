// The few fields of Anthropic's and OpenAI's response bodies and stream events that carry usage.
//
// Every type here decodes leniently: a field of the wrong type, a negative or fractional count, or a
// missing object reads as "absent" instead of failing the whole decode, because the meter must learn what
// it can from an upstream it does not control and must never throw.

import Foundation

/// A token count as a provider reports it, or nil when the value is not a usable count.
///
/// Accepts non-negative integers (also written as `12.0` or `1e3`); ignores negatives, fractions, strings
/// and nulls; clamps anything above ``LLMUsageReading/maximumTokenCount`` so sums can never overflow.
struct TokenCount: Decodable {
    let value: Int64?

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let integer = try? container.decode(Int64.self) {
            value = integer >= 0 ? min(integer, LLMUsageReading.maximumTokenCount) : nil
        } else if let real = try? container.decode(Double.self), real.isFinite, real >= 0,
            real.rounded(.towardZero) == real
        {
            // Compare in Double so a value beyond Int64's range clamps instead of trapping on conversion.
            value = real >= Double(LLMUsageReading.maximumTokenCount) ? LLMUsageReading.maximumTokenCount : Int64(real)
        } else {
            value = nil
        }
    }
}

extension KeyedDecodingContainer {
    /// The count under `key`, or nil when it is missing, null or not a usable count.
    func count(_ key: Key) -> Int64? {
        (try? decodeIfPresent(TokenCount.self, forKey: key))??.value
    }

    /// The value under `key`, or nil when it is missing, null or of another shape.
    func lenient<Value: Decodable>(_ type: Value.Type, _ key: Key) -> Value? {
        (try? decodeIfPresent(type, forKey: key)) ?? nil
    }
}

/// The model name, cut to a sane length so a hostile body cannot make a report carry megabytes.
func boundedModelName(_ name: String?) -> String? {
    guard let name, !name.isEmpty else { return nil }
    return String(name.prefix(LLMUsageReading.maximumModelNameLength))
}

// MARK: - Anthropic Messages

/// Anthropic's `usage` object: in a Message, in `message_start.message`, and in `message_delta`.
///
/// In `message_delta` the counts are cumulative for the whole message so far, and any of them may be
/// absent or null (older API versions send only `output_tokens` there).
struct AnthropicUsageWire: Decodable {
    let inputTokens: Int64?
    let outputTokens: Int64?
    let cacheCreationInputTokens: Int64?
    let cacheReadInputTokens: Int64?

    enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
        case cacheCreationInputTokens = "cache_creation_input_tokens"
        case cacheReadInputTokens = "cache_read_input_tokens"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        inputTokens = container.count(.inputTokens)
        outputTokens = container.count(.outputTokens)
        cacheCreationInputTokens = container.count(.cacheCreationInputTokens)
        cacheReadInputTokens = container.count(.cacheReadInputTokens)
    }

    /// Anthropic's `input_tokens` already excludes cache reads and cache writes, so it maps directly.
    var reading: UsageReading {
        UsageReading(
            uncachedInput: inputTokens, output: outputTokens,
            cacheRead: cacheReadInputTokens, cacheWrite: cacheCreationInputTokens)
    }
}

/// A Messages API response body (`{"type":"message","model":…,"usage":…}`) or `message_start.message`.
struct AnthropicMessageWire: Decodable {
    let model: String?
    let usage: AnthropicUsageWire?

    enum CodingKeys: String, CodingKey { case model, usage }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = container.lenient(String.self, .model)
        usage = container.lenient(AnthropicUsageWire.self, .usage)
    }
}

/// One Messages stream event; only `message_start` and `message_delta` carry usage.
struct AnthropicStreamEventWire: Decodable {
    let type: String?
    let message: AnthropicMessageWire?
    let usage: AnthropicUsageWire?

    enum CodingKeys: String, CodingKey { case type, message, usage }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        type = container.lenient(String.self, .type)
        message = container.lenient(AnthropicMessageWire.self, .message)
        usage = container.lenient(AnthropicUsageWire.self, .usage)
    }
}

// MARK: - OpenAI

/// `input_tokens_details` (Responses) and `prompt_tokens_details` (Chat Completions).
struct OpenAIInputDetailsWire: Decodable {
    let cachedTokens: Int64?

    enum CodingKeys: String, CodingKey { case cachedTokens = "cached_tokens" }

    init(from decoder: any Decoder) throws {
        cachedTokens = try decoder.container(keyedBy: CodingKeys.self).count(.cachedTokens)
    }
}

/// OpenAI's `usage` object in both of its spellings: Responses (`input_tokens`, `output_tokens`,
/// `input_tokens_details`) and Chat Completions (`prompt_tokens`, `completion_tokens`,
/// `prompt_tokens_details`). Whichever spelling is present is read.
struct OpenAIUsageWire: Decodable {
    let inputTokens: Int64?
    let outputTokens: Int64?
    let cachedTokens: Int64?

    enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
        case inputTokensDetails = "input_tokens_details"
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case promptTokensDetails = "prompt_tokens_details"
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        inputTokens = container.count(.inputTokens) ?? container.count(.promptTokens)
        outputTokens = container.count(.outputTokens) ?? container.count(.completionTokens)
        let details =
            container.lenient(OpenAIInputDetailsWire.self, .inputTokensDetails)
            ?? container.lenient(OpenAIInputDetailsWire.self, .promptTokensDetails)
        cachedTokens = details?.cachedTokens
    }

    /// OpenAI's input count includes the cached part; subtract it so the buckets never overlap. OpenAI
    /// reports no cache writes. A snapshot is complete, so absent counts read as zero.
    var reading: UsageReading {
        let input = inputTokens ?? 0
        let cached = min(cachedTokens ?? 0, input)
        let anyCount = inputTokens != nil || outputTokens != nil || cachedTokens != nil
        return UsageReading(
            uncachedInput: anyCount ? input - cached : nil, output: anyCount ? outputTokens ?? 0 : nil,
            cacheRead: anyCount ? cached : nil, cacheWrite: anyCount ? 0 : nil)
    }
}

/// A Responses API response object, a Chat Completions body, or a Chat Completions stream chunk: all
/// three carry `model` and `usage` at the top level.
struct OpenAIModelAndUsageWire: Decodable {
    let model: String?
    let usage: OpenAIUsageWire?

    enum CodingKeys: String, CodingKey { case model, usage }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = container.lenient(String.self, .model)
        usage = container.lenient(OpenAIUsageWire.self, .usage)
    }
}

/// One Responses stream event; the terminal ones (`response.completed`, `response.incomplete`,
/// `response.failed`) carry the response object with its usage.
struct OpenAIResponsesStreamEventWire: Decodable {
    let response: OpenAIModelAndUsageWire?

    enum CodingKeys: String, CodingKey { case response }

    init(from decoder: any Decoder) throws {
        response = try decoder.container(keyedBy: CodingKeys.self)
            .lenient(OpenAIModelAndUsageWire.self, .response)
    }
}

// MARK: - Readings

/// Token counts from one usage object, already split into disjoint buckets; nil means "not reported".
struct UsageReading: Sendable, Equatable {
    var uncachedInput: Int64?
    var output: Int64?
    var cacheRead: Int64?
    var cacheWrite: Int64?

    /// Whether the object held any usable count at all (`"usage":{}` does not count as usage seen).
    var isEmpty: Bool { uncachedInput == nil && output == nil && cacheRead == nil && cacheWrite == nil }

    /// Takes every count `newer` reports and keeps the rest: Anthropic's `message_delta` repeats cumulative
    /// totals for only some fields, so overwriting (never adding) is what avoids double counting.
    mutating func overwrite(with newer: UsageReading) {
        uncachedInput = newer.uncachedInput ?? uncachedInput
        output = newer.output ?? output
        cacheRead = newer.cacheRead ?? cacheRead
        cacheWrite = newer.cacheWrite ?? cacheWrite
    }
}

/// Decodes `bytes` as `Wire`, or nil for anything that is not a JSON object of roughly that shape.
func decodeLeniently<Wire: Decodable>(_: Wire.Type, from bytes: some Collection<UInt8>) -> Wire? {
    try? JSONDecoder().decode(Wire.self, from: Data(bytes))
}
