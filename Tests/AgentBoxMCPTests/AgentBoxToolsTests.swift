@testable import AgentBoxMCP
import AgentBoxAPI
import Foundation
import MCP
import Synchronization
import Testing

/// The text of a result's first content block.
func text(_ result: CallTool.Result) -> String {
    guard case .text(let text, _, _)? = result.content.first else { return "" }
    return text
}

/// A successful result's structured content, decoded.
func structured<T: Decodable>(_ type: T.Type, _ result: CallTool.Result, sourceLocation: SourceLocation = #_sourceLocation) throws -> T {
    #expect(result.isError != true, "\(text(result))", sourceLocation: sourceLocation)
    let value = try #require(result.structuredContent, sourceLocation: sourceLocation)
    // The text block is the same object serialised.
    #expect(try JSONValue.parse(Data(text(result).utf8)) == JSONValue.parse(JSONEncoder().encode(value)), sourceLocation: sourceLocation)
    return try AgentBoxJSON.makeDecoder().decode(T.self, from: JSONEncoder().encode(value))
}

func call(_ tools: AgentBoxTools, _ name: String, _ arguments: String) async throws -> CallTool.Result {
    try await tools.call(name, arguments: Data(arguments.utf8))
}

@Suite("MCP tools")
struct AgentBoxToolsTests {
    let demo = try! WorkspaceKey(validating: "demo")

    @Test func aScopeThatRefusesTheKeyFailsTheToolBeforeAnythingRuns() async throws {
        let workspace = FakeWorkspace()
        let tools = AgentBoxTools(operations: workspace, scope: .only([demo]))
        for (name, arguments) in [
            ("exec", #"{"workspace":"other","command":"echo hi"}"#), ("read_file", #"{"workspace":"other","path":"a"}"#),
            ("write_file", #"{"workspace":"other","path":"a","content":"x"}"#), ("list_files", #"{"workspace":"other"}"#),
            ("spawn_process", #"{"workspace":"other","command":["sleep","1"]}"#), ("list_processes", #"{"workspace":"other"}"#),
            ("process_output", #"{"workspace":"other","processId":"proc_abc"}"#), ("kill_process", #"{"workspace":"other","processId":"proc_abc"}"#),
            // A key that does not exist is refused in the same words: the scope reveals nothing.
            ("exec", #"{"workspace":"absent","command":"echo hi"}"#),
        ] {
            let result = try await call(tools, name, arguments)
            #expect(result.isError == true, "\(name)")
            #expect(text(result).contains("is not one this caller may use"), "\(name): \(text(result))")
        }
        #expect(workspace.calls.withLock { $0 }.isEmpty)
        // The same call in scope runs.
        let allowed = try await call(tools, "exec", #"{"workspace":"demo","command":"echo hi"}"#)
        #expect(try structured(ExecResult.self, allowed).stdout == "hi\n")
        #expect(workspace.calls.withLock { $0 } == ["exec demo"])
    }

    @Test func theServerScopeAllowsEveryWorkspaceAndAnUnknownOneIsAToolError() async throws {
        let tools = AgentBoxTools(operations: FakeWorkspace(), scope: .all)
        #expect(try structured(ExecResult.self, try await call(tools, "exec", #"{"workspace":"other","command":"echo x"}"#)).stdout == "x\n")
        let absent = try await call(tools, "exec", #"{"workspace":"absent","command":"echo x"}"#)
        #expect(absent.isError == true && text(absent) == "no workspace 'absent'")
    }

    @Test func theWorkspaceArgumentDefaultsWhenToldAndIsRequiredOtherwise() async throws {
        let workspace = FakeWorkspace()
        let stdio = AgentBoxTools(operations: workspace, scope: .only([demo]), defaultWorkspace: demo)
        #expect(try structured(ExecResult.self, try await call(stdio, "exec", #"{"command":"echo d"}"#)).stdout == "d\n")
        #expect(workspace.calls.withLock { $0 } == ["exec demo"])
        let http = AgentBoxTools(operations: workspace, scope: .all)
        let missing = try await call(http, "exec", #"{"command":"echo d"}"#)
        #expect(missing.isError == true && text(missing).contains("missing argument 'workspace'"))
        let malformed = try await call(http, "exec", #"{"workspace":"../etc","command":"echo d"}"#)
        #expect(malformed.isError == true && text(malformed).contains("may hold only"))

        // The schemas say so too.
        for tool in http.definitions {
            #expect(tool.inputSchema.objectValue?["required"]?.arrayValue?.first == "workspace", "\(tool.name)")
        }
        for tool in stdio.definitions {
            #expect(tool.inputSchema.objectValue?["required"]?.arrayValue?.contains("workspace") == false, "\(tool.name)")
            #expect(tool.inputSchema.objectValue?["properties"]?.objectValue?["workspace"] != nil)
        }
        #expect(Set(http.definitions.map(\.name)) == Set(AgentBoxTools.Name.allCases.map(\.rawValue)))
    }

    @Test(arguments: [
        ("exec", #"{"workspace":"demo"}"#, "missing field 'command'"),
        ("exec", #"{"workspace":"demo","command":5}"#, "'command' should be a string"),
        ("exec", #"{"workspace":"demo","command":"ls","timeoutMs":0}"#, "timeoutMs must be 1...600000"),
        ("exec", #"{"workspace":"demo","command":"ls","timeoutMs":600001}"#, "timeoutMs must be"),
        ("write_file", #"{"workspace":"demo","path":"a","content":"%%%","encoding":"base64"}"#, "not valid base64"),
        ("write_file", #"{"workspace":"demo","path":"a","content":"x","encoding":"latin1"}"#, "'encoding'"),
        ("spawn_process", #"{"workspace":"demo","command":[]}"#, "command must name a program"),
        ("process_output", #"{"workspace":"demo","processId":"../x"}"#, "not a process id"),
        ("kill_process", #"{"workspace":"demo","processId":"proc_abc","signal":"BOOM"}"#, "signal must be one of"),
        ("list_files", #"[1,2]"#, "should be an object"),
    ])
    func badArgumentsAreToolErrorsThatSayWhatIsWrong(name: String, arguments: String, words: String) async throws {
        let result = try await call(AgentBoxTools(operations: FakeWorkspace(), scope: .all), name, arguments)
        #expect(result.isError == true)
        #expect(text(result).contains(words), "\(text(result))")
    }

    @Test func anUnknownToolIsAProtocolError() async throws {
        await #expect(throws: MCPError.self) { try await call(AgentBoxTools(operations: FakeWorkspace(), scope: .all), "rm_rf", "{}") }
    }

    @Test func filesRoundTripAsTextAndAsBase64() async throws {
        let workspace = FakeWorkspace()
        var limits = AgentBoxTools.Limits()
        limits.maxReadBytes = 10
        let tools = AgentBoxTools(operations: workspace, scope: .all, limits: limits)
        let written = try structured(FileWriteResult.self, try await call(tools, "write_file", #"{"workspace":"demo","path":"/workspace/a.txt","content":"héllo"}"#))
        #expect(written.bytesWritten == 6)
        let read = try structured(FileContent.self, try await call(tools, "read_file", #"{"workspace":"demo","path":"/workspace/a.txt"}"#))
        #expect(read == FileContent(path: "/workspace/a.txt", size: 6, encoding: .utf8, content: "héllo", truncated: false))

        _ = try await call(tools, "write_file", #"{"workspace":"demo","path":"/workspace/b.bin","content":"aGn/","encoding":"base64"}"#)
        #expect(workspace.files.withLock { $0["/workspace/b.bin"] } == Data([0x68, 0x69, 0xFF]))
        let binary = try structured(FileContent.self, try await call(tools, "read_file", #"{"workspace":"demo","path":"/workspace/b.bin"}"#))
        #expect(binary.encoding == .base64 && binary.bytes == [0x68, 0x69, 0xFF])

        // Larger than the limit: the beginning, cut before the character the limit falls in, still text.
        _ = try await call(tools, "write_file", #"{"workspace":"demo","path":"/workspace/c.txt","content":"aaaaaaaaaéz"}"#)
        let cut = try structured(FileContent.self, try await call(tools, "read_file", #"{"workspace":"demo","path":"/workspace/c.txt"}"#))
        #expect(cut == FileContent(path: "/workspace/c.txt", size: 12, encoding: .utf8, content: "aaaaaaaaa", truncated: true))

        let missing = try await call(tools, "read_file", #"{"workspace":"demo","path":"/workspace/none"}"#)
        #expect(missing.isError == true && text(missing).contains("no such file"))
    }

    @Test func listingsAndProcessOutputStayWithinTheirLimits() async throws {
        let workspace = FakeWorkspace()
        var limits = AgentBoxTools.Limits()
        limits.maxListedEntries = 2
        limits.maxProcessOutputBytes = 1000
        let tools = AgentBoxTools(operations: workspace, scope: .all, limits: limits)
        for name in ["a", "b", "c"] { _ = try await call(tools, "write_file", #"{"workspace":"demo","path":"\#(name)","content":"x"}"#) }
        let list = try structured(FileEntryList.self, try await call(tools, "list_files", #"{"workspace":"demo"}"#))
        #expect(list.items.map(\.name) == ["a", "b"] && list.truncated)

        let report = try structured(ProcessReport.self, try await call(tools, "process_output", #"{"workspace":"demo","processId":"proc_abc"}"#))
        // The last 1000 bytes, starting on a character: 998 "a" and the two bytes of "é".
        #expect(report.truncated && report.stdoutEncoding == nil && report.stdout == String(repeating: "a", count: 998) + "é")
        #expect(report.process.status == .running)

        let spawned = try structured(WorkspaceProcess.self, try await call(tools, "spawn_process", #"{"workspace":"demo","command":["python3","-m","http.server"]}"#))
        #expect(spawned.command == "python3" && spawned.args == ["-m", "http.server"])
        _ = try structured(WorkspaceProcess.self, try await call(tools, "kill_process", #"{"workspace":"demo","processId":"proc_abc","signal":"sigkill"}"#))
        _ = try structured(ProcessList.self, try await call(tools, "list_processes", #"{"workspace":"demo"}"#))
        #expect(workspace.calls.withLock { $0 }.contains("signal KILL demo"))
    }

    @Test func textCutsKeepWholeCharacters() {
        let bytes = Array("aé€😀".utf8)  // 1 + 2 + 3 + 4 bytes
        for (length, expected) in [(1, "a"), (2, "a"), (3, "aé"), (4, "aé"), (5, "aé"), (6, "aé€"), (9, "aé€"), (10, "aé€😀")] {
            #expect(String(decoding: TextCut.droppingIncompleteEnd(Array(bytes.prefix(length))), as: UTF8.self) == expected, "\(length)")
        }
        for (limit, expected) in [(4, "😀"), (5, "😀"), (7, "€😀"), (9, "é€😀"), (20, "aé€😀")] {
            #expect(String(decoding: TextCut.suffix(bytes, limit: limit), as: UTF8.self) == expected, "\(limit)")
        }
    }
}

/// How the toolkit MCP transport tells requests and answers apart, to answer every request before it closes.
struct ToolkitSocketTransportTests {
    @Test func requestsAndAnswersAreCountedInMessagesAndBatches() {
        func count(_ text: String, requests: Bool) -> Int { ToolkitSocketTransport.count(Data(text.utf8), requests: requests) }
        #expect(count(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#, requests: true) == 1)
        #expect(count(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, requests: true) == 0)
        #expect(count(#"{"jsonrpc":"2.0","id":null,"method":"x"}"#, requests: true) == 0)
        #expect(count(#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":"b","method":"b"},{"jsonrpc":"2.0","method":"n"}]"#, requests: true) == 2)
        #expect(count(#"{"jsonrpc":"2.0","id":1,"result":{}}"#, requests: false) == 1)
        #expect(count(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, requests: false) == 0, "a request from the server is no answer")
        #expect(count("not json", requests: true) == 0)
    }
}
