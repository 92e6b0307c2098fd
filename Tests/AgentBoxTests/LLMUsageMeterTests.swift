import Foundation
import Testing
@testable import AgentBox

// Recorded-style bodies, written by hand from the shapes in Anthropic's and OpenAI's API references.

enum Recorded {
    static let anthropicMessage = #"""
        {"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hello! How can I help?"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":300,"cache_read_input_tokens":4000,"cache_creation":{"ephemeral_5m_input_tokens":300,"ephemeral_1h_input_tokens":0},"output_tokens":9,"service_tier":"standard"}}
        """#

    static let anthropicStream = """
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1}}}

        event: content_block_start
        data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

        event: ping
        data: {"type": "ping"}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"! The \\"usage\\": {\\"output_tokens\\": 999} field — café ☕︎"}}

        event: content_block_stop
        data: {"type":"content_block_stop","index":0}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}

        event: message_stop
        data: {"type":"message_stop"}


        """

    /// A newer-API stream (server tools): `message_delta` repeats cumulative input and cache counts, twice.
    static let anthropicStreamWithCumulativeDeltas = """
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_2","type":"message","role":"assistant","content":[],"model":"claude-opus-4-1-20250805","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":2679,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":3}}}

        event: content_block_start
        data: {"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_014","name":"web_search","input":{}}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\\"query\\": \\"weather\\"}"}}

        event: content_block_stop
        data: {"type":"content_block_stop","index":0}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":null,"stop_sequence":null},"usage":{"input_tokens":10682,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":120,"server_tool_use":{"web_search_requests":1}}}

        event: ping
        data: {"type": "ping"}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":10682,"cache_creation_input_tokens":null,"cache_read_input_tokens":512,"output_tokens":510}}

        event: message_stop
        data: {"type":"message_stop"}


        """

    static let responsesBody = #"""
        {"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response","created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[{"type":"message","id":"msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b","status":"completed","role":"assistant","content":[{"type":"output_text","text":"In a peaceful grove beneath a silver moon...","annotations":[]}]}],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":{"input_tokens":1836,"input_tokens_details":{"cached_tokens":1536},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":1923},"user":null,"metadata":{}}
        """#

    static let responsesStream = """
        event: response.created
        data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_67c9fdcecf","object":"response","created_at":1741290958,"status":"in_progress","error":null,"model":"gpt-4.1-2025-04-14","output":[],"tools":[],"usage":null,"metadata":{}}}

        event: response.in_progress
        data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_67c9fdcecf","object":"response","created_at":1741290958,"status":"in_progress","error":null,"model":"gpt-4.1-2025-04-14","output":[],"tools":[],"usage":null,"metadata":{}}}

        event: response.output_item.added
        data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_67c9fdcf37","type":"message","status":"in_progress","role":"assistant","content":[]}}

        event: response.content_part.added
        data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_67c9fdcf37","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}

        event: response.output_text.delta
        data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_67c9fdcf37","output_index":0,"content_index":0,"delta":"Hi"}

        event: response.output_text.delta
        data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_67c9fdcf37","output_index":0,"content_index":0,"delta":" there — ünïcode"}

        event: response.output_text.done
        data: {"type":"response.output_text.done","sequence_number":6,"item_id":"msg_67c9fdcf37","output_index":0,"content_index":0,"text":"Hi there — ünïcode"}

        event: response.content_part.done
        data: {"type":"response.content_part.done","sequence_number":7,"item_id":"msg_67c9fdcf37","output_index":0,"content_index":0,"part":{"type":"output_text","text":"Hi there — ünïcode","annotations":[]}}

        event: response.output_item.done
        data: {"type":"response.output_item.done","sequence_number":8,"output_index":0,"item":{"id":"msg_67c9fdcf37","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there — ünïcode","annotations":[]}]}}

        event: response.completed
        data: {"type":"response.completed","sequence_number":9,"response":{"id":"resp_67c9fdcecf","object":"response","created_at":1741290958,"status":"completed","error":null,"model":"gpt-4.1-2025-04-14","output":[{"id":"msg_67c9fdcf37","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there — ünïcode","annotations":[]}]}],"tools":[],"usage":{"input_tokens":37,"input_tokens_details":{"cached_tokens":0},"output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48},"metadata":{}}}


        """

    static let chatBody = #"""
        {"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"The image shows a wooden boardwalk.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1117,"completion_tokens":46,"total_tokens":1163,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}
        """#

    /// With `stream_options.include_usage`, every chunk has `"usage":null` and one last chunk has it all.
    static let chatStream = """
        data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}

        data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}

        data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":" \\"usage\\": {} ✓"},"logprobs":null,"finish_reason":null}],"usage":null}

        data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

        data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":9,"total_tokens":1209,"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}

        data: [DONE]


        """

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let endpoint: LLMEndpoint
        let streaming: Bool
        let body: String
        let expected: LLMUsageReading?
        var testDescription: String { name }
    }

    /// One JSON document spread over several `data:` lines, which only parses if they are joined by LF.
    static let multiLineData = Case(
        name: "multi-line data", endpoint: .anthropicMessages, streaming: true,
        body: """
            event: message_start
            data: {"type":"message_start",
            data:  "message":{"model":"claude-haiku-4-5",
            data: "usage":{"input_tokens":7,"output_tokens":1}}}

            event: message_delta
            data:{"type":"message_delta","usage":
            data: {"output_tokens":3}}


            """,
        expected: LLMUsageReading(inputTokens: 7, outputTokens: 3, model: "claude-haiku-4-5"))

    static let cases: [Case] = [
        Case(
            name: "Anthropic message", endpoint: .anthropicMessages, streaming: false, body: anthropicMessage,
            expected: LLMUsageReading(
                inputTokens: 12, outputTokens: 9, cacheReadTokens: 4000, cacheWriteTokens: 300,
                model: "claude-sonnet-4-5-20250929")),
        Case(
            name: "Anthropic stream", endpoint: .anthropicMessages, streaming: true, body: anthropicStream,
            expected: LLMUsageReading(
                inputTokens: 25, outputTokens: 15, cacheReadTokens: 2000, cacheWriteTokens: 100,
                model: "claude-sonnet-4-5-20250929")),
        Case(
            name: "Anthropic stream, cumulative deltas", endpoint: .anthropicMessages, streaming: true,
            body: anthropicStreamWithCumulativeDeltas,
            expected: LLMUsageReading(
                inputTokens: 10682, outputTokens: 510, cacheReadTokens: 512, cacheWriteTokens: 0,
                model: "claude-opus-4-1-20250805")),
        Case(
            name: "Anthropic count_tokens", endpoint: .anthropicCountTokens, streaming: false,
            body: #"{"input_tokens":2095}"#, expected: nil),
        Case(
            name: "OpenAI response", endpoint: .openAIResponses, streaming: false, body: responsesBody,
            expected: LLMUsageReading(
                inputTokens: 300, outputTokens: 87, cacheReadTokens: 1536, cacheWriteTokens: 0,
                model: "gpt-4.1-2025-04-14")),
        Case(
            name: "OpenAI response stream", endpoint: .openAIResponses, streaming: true, body: responsesStream,
            expected: LLMUsageReading(inputTokens: 37, outputTokens: 11, model: "gpt-4.1-2025-04-14")),
        Case(
            name: "OpenAI chat completion", endpoint: .openAIChatCompletions, streaming: false, body: chatBody,
            expected: LLMUsageReading(inputTokens: 1117, outputTokens: 46, model: "gpt-4o-2024-08-06")),
        Case(
            name: "OpenAI chat completion stream", endpoint: .openAIChatCompletions, streaming: true,
            body: chatStream,
            expected: LLMUsageReading(
                inputTokens: 176, outputTokens: 9, cacheReadTokens: 1024, cacheWriteTokens: 0,
                model: "gpt-4o-mini")),
    ]
}

// MARK: - Helpers

func meter(_ endpoint: LLMEndpoint, streaming: Bool, chunks: [ArraySlice<UInt8>]) -> LLMUsageReading? {
    var meter = LLMUsageMeter(endpoint: endpoint, streaming: streaming)
    for chunk in chunks { meter.consume(chunk) }
    return meter.finish()
}

func meter(_ endpoint: LLMEndpoint, streaming: Bool, body: String) -> LLMUsageReading? {
    meter(endpoint, streaming: streaming, chunks: [ArraySlice(body.utf8)])
}

/// A small deterministic generator, so a failing fuzz case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

func randomChunks(of bytes: [UInt8], using generator: inout SplitMix64, maximumSize: Int = 64)
    -> [ArraySlice<UInt8>]
{
    var chunks: [ArraySlice<UInt8>] = []
    var start = 0
    while start < bytes.count {
        let size = Int.random(in: 0...maximumSize, using: &generator)
        let end = min(bytes.count, start + size)
        chunks.append(bytes[start..<end])
        start = end
    }
    return chunks
}

// MARK: - Recorded bodies

@Suite struct RecordedBodies {
    @Test(arguments: Recorded.cases)
    func reportsTheUsageOfARecordedBody(_ recorded: Recorded.Case) {
        #expect(meter(recorded.endpoint, streaming: recorded.streaming, body: recorded.body) == recorded.expected)
    }

    @Test(arguments: Recorded.cases)
    func givesTheSameAnswerWhenSplitAtAnyOffset(_ recorded: Recorded.Case) {
        let bytes = Array(recorded.body.utf8)
        for offset in 0...bytes.count {
            let usage = meter(
                recorded.endpoint, streaming: recorded.streaming, chunks: [bytes[..<offset], bytes[offset...]])
            #expect(usage == recorded.expected, "split at \(offset)")
            if usage != recorded.expected { break }
        }
    }

    @Test(arguments: Recorded.cases)
    func givesTheSameAnswerFedByteByByteAndInRandomChunks(_ recorded: Recorded.Case) {
        let bytes = Array(recorded.body.utf8)
        let singles = bytes.indices.map { bytes[$0..<($0 + 1)] }
        #expect(meter(recorded.endpoint, streaming: recorded.streaming, chunks: singles) == recorded.expected)
        var generator = SplitMix64(state: 7)
        for _ in 0..<200 {
            let chunks = randomChunks(of: bytes, using: &generator)
            #expect(meter(recorded.endpoint, streaming: recorded.streaming, chunks: chunks) == recorded.expected)
        }
    }

    @Test func acceptsSequencesWithoutContiguousStorage() {
        var meter = LLMUsageMeter(endpoint: .openAIChatCompletions, streaming: true)
        for line in Recorded.chatStream.split(separator: "\n", omittingEmptySubsequences: false) {
            meter.consume(line.utf8.lazy.map { $0 })
            meter.consume(CollectionOfOne(UInt8(ascii: "\n")))
        }
        #expect(meter.finish()?.cacheReadTokens == 1024)
    }

    @Test func inputTokensAreUncachedForBothProviders() throws {
        let anthropic = try #require(meter(.anthropicMessages, streaming: false, body: Recorded.anthropicMessage))
        #expect(anthropic.totalInputTokens == 12 + 4000 + 300)
        let openAI = try #require(meter(.openAIResponses, streaming: false, body: Recorded.responsesBody))
        #expect(openAI.totalInputTokens == 1836)
    }
}

// MARK: - Server-sent events framing

@Suite struct ServerSentEventFraming {
    static let streams = Recorded.cases.filter(\.streaming) + [Recorded.multiLineData]

    @Test(arguments: streams, ["\r\n", "\r"])
    func acceptsCRLFAndCRLineEndsSplitAnywhere(_ recorded: Recorded.Case, lineEnd: String) {
        let bytes = Array(recorded.body.replacingOccurrences(of: "\n", with: lineEnd).utf8)
        #expect(meter(recorded.endpoint, streaming: true, chunks: [bytes[...]]) == recorded.expected)
        for offset in 0...bytes.count {
            let usage = meter(recorded.endpoint, streaming: true, chunks: [bytes[..<offset], bytes[offset...]])
            #expect(usage == recorded.expected, "split at \(offset)")
            if usage != recorded.expected { break }
        }
    }

    @Test func joinsMultipleDataLinesWithLineFeeds() {
        let recorded = Recorded.multiLineData
        #expect(meter(recorded.endpoint, streaming: true, body: recorded.body) == recorded.expected)
    }

    @Test func ignoresCommentsUnknownFieldsAndNonJSONData() {
        let stream = """
            : keep-alive comment with "usage": {
            retry: 3000
            id: 41

            data: not json at all "usage": {}

            data

            data: {"choices":[],"model":"gpt-4o","usage":{"prompt_tokens":5,"completion_tokens":2}}
            id: 42

            data: [DONE]

            """
        #expect(
            meter(.openAIChatCompletions, streaming: true, body: stream)
                == LLMUsageReading(inputTokens: 5, outputTokens: 2, model: "gpt-4o"))
    }

    @Test func countsALastEventThatLacksItsBlankLine() {
        let stream = #"data: {"model":"gpt-4o","usage":{"prompt_tokens":5,"completion_tokens":2}}"#
        #expect(meter(.openAIChatCompletions, streaming: true, body: stream)?.outputTokens == 2)
        #expect(meter(.openAIChatCompletions, streaming: true, body: stream + "\n")?.outputTokens == 2)
    }

    @Test func ignoresAStreamCutInTheMiddleOfTheUsageEvent() {
        let stream = Recorded.chatStream
        let cut = stream.range(of: #""completion_tokens":9"#)!.lowerBound
        #expect(meter(.openAIChatCompletions, streaming: true, body: String(stream[..<cut])) == nil)
    }
}

// MARK: - Bodies without usage

@Suite struct BodiesWithoutUsage {
    @Test(arguments: [
        Recorded.Case(name: "Anthropic error body", endpoint: .anthropicMessages, streaming: false, body: #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, expected: nil),
        Recorded.Case(name: "Anthropic error event", endpoint: .anthropicMessages, streaming: true, body: "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n", expected: nil),
        Recorded.Case(name: "OpenAI Responses error body", endpoint: .openAIResponses, streaming: false, body: #"{"error":{"message":"Invalid model","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#, expected: nil),
        Recorded.Case(name: "OpenAI chat error body", endpoint: .openAIChatCompletions, streaming: false, body: #"{"error":{"message":"Rate limit","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#, expected: nil),
        Recorded.Case(name: "Responses stream failed without usage", endpoint: .openAIResponses, streaming: true, body: "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"status\":\"failed\",\"error\":{\"code\":\"server_error\"},\"usage\":null}}\n\n", expected: nil),
        Recorded.Case(name: "chat stream without usage chunk", endpoint: .openAIChatCompletions, streaming: true, body: "data: {\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n", expected: nil),
        Recorded.Case(name: "empty usage object", endpoint: .anthropicMessages, streaming: false, body: #"{"model":"claude","usage":{}}"#, expected: nil),
        Recorded.Case(name: "usage of the wrong type", endpoint: .anthropicMessages, streaming: false, body: #"{"model":"claude","usage":"lots"}"#, expected: nil),
        Recorded.Case(name: "empty body", endpoint: .openAIChatCompletions, streaming: false, body: "", expected: nil),
        Recorded.Case(name: "empty stream", endpoint: .openAIChatCompletions, streaming: true, body: "", expected: nil),
        Recorded.Case(name: "HTML from a proxy", endpoint: .anthropicMessages, streaming: false, body: "<html>502 Bad Gateway</html>", expected: nil),
        Recorded.Case(name: "JSON array", endpoint: .anthropicMessages, streaming: false, body: #"[{"usage":{"input_tokens":1}}]"#, expected: nil),
        Recorded.Case(name: "count_tokens ignores even a full stream", endpoint: .anthropicCountTokens, streaming: true, body: Recorded.anthropicStream, expected: nil),
    ])
    func reportsNil(_ recorded: Recorded.Case) {
        #expect(meter(recorded.endpoint, streaming: recorded.streaming, body: recorded.body) == nil)
    }

    @Test func chatStreamWithoutIncludeUsageReportsNil() {
        let withoutUsage = Recorded.chatStream
            .split(separator: "\n").filter { !$0.contains(#""usage":{"#) }
            .joined(separator: "\n\n")
        #expect(meter(.openAIChatCompletions, streaming: true, body: withoutUsage) == nil)
    }

    @Test func aStreamThatFailsAfterMessageStartReportsTheUsageSeen() {
        let stream = """
            event: message_start
            data: {"type":"message_start","message":{"model":"claude-sonnet-4-5","usage":{"input_tokens":40,"output_tokens":1}}}

            event: error
            data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}


            """
        #expect(
            meter(.anthropicMessages, streaming: true, body: stream)
                == LLMUsageReading(inputTokens: 40, outputTokens: 1, model: "claude-sonnet-4-5"))
    }
}

// MARK: - Hostile input

@Suite struct HostileInput {
    @Test func skipsALineLongerThanTheLimitAndKeepsTheRest() {
        let giantText = String(repeating: "x", count: LLMUsageMeter.maximumLineBytes + 10)
        let giant = #"data: {"type":"message_delta","usage":{"output_tokens":999999},"pad":"\#(giantText)"}"#
        let stream = Recorded.anthropicStream.replacingOccurrences(
            of: "event: message_stop\n", with: "event: message_delta\n\(giant)\n\nevent: message_stop\n")
        let bytes = Array(stream.utf8)
        var generator = SplitMix64(state: 3)
        for chunkSize in [1 << 10, 1 << 16, bytes.count] {
            let chunks = stride(from: 0, to: bytes.count, by: chunkSize).map {
                bytes[$0..<min(bytes.count, $0 + chunkSize)]
            }
            #expect(meter(.anthropicMessages, streaming: true, chunks: chunks)?.outputTokens == 15)
        }
        let random = randomChunks(of: bytes, using: &generator, maximumSize: 100_000)
        #expect(meter(.anthropicMessages, streaming: true, chunks: random)?.outputTokens == 15)
    }

    @Test func skipsAnEventWhoseDataLinesAddUpPastTheLimit() {
        let line = "data: " + String(repeating: " ", count: 1 << 16) + "\n"
        let stream = #"data: {"model":"gpt-4o","usage":{"prompt_tokens":5,"completion_tokens":2}}"# + "\n"
            + String(repeating: line, count: 20) + "\n"
        #expect(meter(.openAIChatCompletions, streaming: true, body: stream) == nil)
    }

    @Test func readsABodyUpToTheLimitAndNoFurther() {
        let body = Recorded.chatBody
        let fits = body + String(repeating: " ", count: LLMUsageMeter.maximumBodyBytes - body.utf8.count)
        #expect(meter(.openAIChatCompletions, streaming: false, body: fits)?.outputTokens == 46)
        let bytes = Array((fits + " ").utf8)
        let chunks = stride(from: 0, to: bytes.count, by: 1 << 16).map { bytes[$0..<min(bytes.count, $0 + (1 << 16))] }
        #expect(meter(.openAIChatCompletions, streaming: false, chunks: chunks) == nil)
    }

    @Test(arguments: [
        ("-5", nil), ("3.5", nil), ("\"12\"", nil), ("null", nil), ("true", nil), ("{}", nil),
        ("12.0", 12), ("1e3", 1000), ("0", 0),
        ("1e30", LLMUsageReading.maximumTokenCount), ("99999999999999999999999", LLMUsageReading.maximumTokenCount),
        ("9223372036854775807", LLMUsageReading.maximumTokenCount),
    ] as [(String, Int64?)])
    func ignoresOrClampsOddNumbers(_ number: String, expected: Int64?) {
        let body = #"{"model":"m","usage":{"input_tokens":3,"output_tokens":\#(number)}}"#
        let usage = meter(.anthropicMessages, streaming: false, body: body)
        #expect(usage?.inputTokens == 3)
        #expect(usage?.outputTokens == (expected ?? 0))
    }

    @Test func cachedTokensAboveTheInputCannotMakeInputNegative() {
        let body = #"{"model":"m","usage":{"input_tokens":10,"output_tokens":1,"input_tokens_details":{"cached_tokens":50}}}"#
        #expect(
            meter(.openAIResponses, streaming: false, body: body)
                == LLMUsageReading(inputTokens: 0, outputTokens: 1, cacheReadTokens: 10, model: "m"))
    }

    @Test func cutsALongModelName() {
        let name = String(repeating: "m", count: 10_000)
        let body = #"{"model":"\#(name)","usage":{"input_tokens":1,"output_tokens":1}}"#
        #expect(meter(.anthropicMessages, streaming: false, body: body)?.model?.count == LLMUsageReading.maximumModelNameLength)
    }

    /// Random bytes and mutated recordings, in random chunks: never a crash, and the answer never depends
    /// on how the bytes were cut.
    @Test(arguments: LLMEndpoint.allCases, [false, true])
    func survivesFuzzingAndIgnoresChunking(endpoint: LLMEndpoint, streaming: Bool) {
        var generator = SplitMix64(state: 0xA6E7_B0C5 ^ UInt64(streaming ? 1 : 2) ^ UInt64(endpoint.hashValue & 0xFFFF))
        let alphabet = Array("data: event:\n\r{}\":,usage0123456789-.e".utf8)
        let seeds = Recorded.cases.map { Array($0.body.utf8) }
        for round in 0..<400 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0:
                bytes = (0..<Int.random(in: 0...2000, using: &generator)).map { _ in
                    UInt8.random(in: .min ... .max, using: &generator)
                }
            case 1:
                bytes = (0..<Int.random(in: 0...2000, using: &generator)).map { _ in
                    alphabet.randomElement(using: &generator)!
                }
            default:
                bytes = seeds.randomElement(using: &generator)!
                for _ in 0..<Int.random(in: 1...20, using: &generator) where !bytes.isEmpty {
                    let index = Int.random(in: bytes.indices, using: &generator)
                    bytes[index] = alphabet.randomElement(using: &generator)!
                }
            }
            let whole = meter(endpoint, streaming: streaming, chunks: [bytes[...]])
            let chunked = meter(endpoint, streaming: streaming, chunks: randomChunks(of: bytes, using: &generator))
            #expect(whole == chunked, "round \(round)")
        }
    }
}

// MARK: - Throughput

/// Not a timed assertion: prints MB/s. Run in release:
/// `USAGE_METER_BENCH=1 swift test -c release --filter Throughput`.
@Suite(
    .serialized,
    .enabled(if: ProcessInfo.processInfo.environment["USAGE_METER_BENCH"] != nil, "set USAGE_METER_BENCH=1"))
struct Throughput {
    static func stream(of endpoint: LLMEndpoint, bytes target: Int) -> [UInt8] {
        var text = ""
        switch endpoint {
        case .anthropicMessages:
            text += Recorded.anthropicStream.components(separatedBy: "event: content_block_start")[0]
            let delta = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" word\"}}\n\n"
            text += String(repeating: delta, count: target / delta.utf8.count)
            text += "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":99}}\n\n"
        case .openAIResponses:
            let delta = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_67c9fdcf37\",\"output_index\":0,\"content_index\":0,\"delta\":\" word\"}\n\n"
            text += String(repeating: delta, count: target / delta.utf8.count)
            text += "event: response.completed"
            text += Recorded.responsesStream.components(separatedBy: "event: response.completed")[1]
        default:
            let delta = "data: {\"id\":\"chatcmpl-123\",\"object\":\"chat.completion.chunk\",\"created\":1694268190,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" word\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
            text += String(repeating: delta, count: target / delta.utf8.count)
            text += Recorded.chatStream.components(separatedBy: "\n\n").suffix(3).joined(separator: "\n\n")
        }
        return Array(text.utf8)
    }

    @Test(arguments: [LLMEndpoint.anthropicMessages, .openAIResponses, .openAIChatCompletions])
    func printsMegabytesPerSecond(_ endpoint: LLMEndpoint) {
        let bytes = Self.stream(of: endpoint, bytes: 10_000_000)
        let chunkSize = 16 * 1024
        var best = Duration.seconds(1000)
        var usage: LLMUsageReading?
        for _ in 0..<5 {
            let elapsed = ContinuousClock().measure {
                var meter = LLMUsageMeter(endpoint: endpoint, streaming: true)
                var start = 0
                while start < bytes.count {
                    meter.consume(bytes[start..<min(bytes.count, start + chunkSize)])
                    start += chunkSize
                }
                usage = meter.finish()
            }
            best = min(best, elapsed)
        }
        let seconds = Double(best.components.seconds) + Double(best.components.attoseconds) / 1e18
        print("throughput \(endpoint): \(bytes.count) bytes in \(best) → \(Int(Double(bytes.count) / seconds / 1e6)) MB/s")
        #expect(usage != nil)
    }
}
