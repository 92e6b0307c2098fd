import AgentBoxAPI
import Foundation
import Testing

/// The hand-written JSON reader and writer every ACP message goes through, checked against Foundation.
@Suite("JSON text of JSONValue")
struct JSONTextTests {
    static let corpus = [
        #"{"jsonrpc":"2.0","id":1,"method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"hi"}}}}"#,
        #"[1,-2,3.5,1e3,-0.25e-2,0,12345678901234,true,false,null,"",[],{}]"#,
        #"{"a":"quote \" backslash \\ slash \/ nl \n tab \t cr \r bs \b ff \f ctl \u0001 é \u00e9 😀 \ud83d\ude00 ∑"}"#,
        "  {\"spaced\" : [ 1 , 2 ] }\n",
        #"{"nested":{"deeper":{"deepest":[[[["x"]]]]}}}"#,
    ]

    @Test(arguments: corpus) func readsLikeFoundation(_ text: String) throws {
        let ours = try JSONValue.parse(text)
        let theirs = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(ours == theirs)
        // Written and read again, the value is the same; the text matches Foundation's sorted, compact output.
        #expect(try JSONValue.parse(ours.jsonText) == ours)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let foundation = try JSONDecoder().decode(JSONValue.self, from: try encoder.encode(ours))
        #expect(try JSONValue.parse(ours.jsonText) == foundation)
    }

    @Test func writesCompactSortedJSON() {
        let value: JSONValue = ["b": [1, .number(2.5), "x\n\"y\u{1}"], "a": nil, "c": true]
        #expect(value.jsonText == #"{"a":null,"b":[1,2.5,"x\n\"y\u0001"],"c":true}"#)
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{a:1}", "01", "1.", "-", "1e", "tru", "nul", "\"open", "\"bad \\x escape\"",
        "\"\\ud800 lone\"", "\"\\udc00\"", "\"ctl \u{1} raw\"", "[1] 2", "NaN", "Infinity", "'single'", "\"\\u12\"",
    ])
    func refusesWhatIsNotJSON(_ text: String) {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(text) }
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Data([0x22, 0xFF, 0xFE, 0x22])) }
    }

    /// A hostile peer's deeply nested message is an error, not a stack overflow.
    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(deep) }
        let allowed = String(repeating: "[", count: JSONValue.maximumDepth) + String(repeating: "]", count: JSONValue.maximumDepth)
        #expect(try JSONValue.parse(allowed) != .null)
        let objects = String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(objects) }
    }

    @Test(arguments: corpus) func aSessionEventIsWrittenAsFoundationEncodesIt(_ text: String) throws {
        let payload = try JSONValue.parse(text)
        let event = SessionEvent(seq: 42, at: Date(timeIntervalSince1970: 1_764_180_000.4567), sender: .agent, type: "a \"type\"\n", payload: payload)
        let ours = event.jsonBytes
        let foundation = try AgentBoxJSON.makeEncoder().encode(event)
        let decoder = AgentBoxJSON.makeDecoder()
        #expect(try decoder.decode(SessionEvent.self, from: Data(ours)) == decoder.decode(SessionEvent.self, from: foundation))
        #expect(try JSONValue.parse(ours) == JSONValue.parse(foundation))
        #expect(String(decoding: ours, as: UTF8.self).hasPrefix(#"{"at":"2025-11-26T18:00:00.456Z","payload":"#))
    }
}
