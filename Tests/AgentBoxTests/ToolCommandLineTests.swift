import Testing

import AgentBoxAPI
@testable import AgentBox

/// The web toolkit of these tests: `agentbox-web search|fetch_page|status`.
enum WebToolkitFixture {
    static let searchSchema = """
        {"type":"object","required":["query"],"properties":{
          "query":{"type":"string","description":"What to search for."},
          "maxResults":{"type":"integer","description":"How many results to return.\\nAt most 50.","default":10,"minimum":1},
          "min_score":{"type":"number"},
          "safe":{"type":"boolean","default":true,"description":"Filter adult content."},
          "tags":{"type":"array","items":{"type":"string"}},
          "ids":{"type":"array","items":{"type":"integer"}},
          "flags":{"type":"array","items":{"type":"boolean"}},
          "mode":{"type":"string","enum":["fast","deep"]},
          "region":{"enum":["eu","us"]},
          "filter":{"type":"object","properties":{"site":{"type":"string"}}},
          "matrix":{"type":"array","items":{"type":"array","items":{"type":"number"}}},
          "note":{"type":["string","null"]},
          "limit":{"type":["integer","null"]},
          "strict":{"type":["boolean","null"]},
          "anything":{},
          "URLPath":{"type":"string"}
        }}
        """

    static var tools: [ToolSummary] {
        get throws {
            [
                ToolSummary(name: "search", description: "Search the web.\nReturns titles and links.", inputSchema: try parseJSON(searchSchema)),
                ToolSummary(
                    name: "fetch_page", description: "Fetch a page as text.",
                    inputSchema: try parseJSON(#"{"type":"object","properties":{"url":{"type":"string","examples":["https://example.com"]}},"required":["url"]}"#)),
                ToolSummary(name: "status", description: "", inputSchema: try parseJSON(#"{"type":"object"}"#)),
            ]
        }
    }

    static func parse(_ arguments: [String]) throws -> ToolCommand {
        try ToolCommandLine.parse(toolkit: "web", description: "Search and read the web.", tools: tools, arguments: arguments)
    }

    /// The input of a call, or a failed expectation.
    static func input(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue? {
        guard case .call(let tool, let input) = try parse(arguments) else {
            Issue.record("expected a call for \(arguments)", sourceLocation: sourceLocation)
            return nil
        }
        #expect(tool == "search" || tool == "fetch_page" || tool == "status", sourceLocation: sourceLocation)
        return input
    }

    /// The message of the error the arguments give, or a failed expectation.
    static func error(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        do {
            let command = try parse(arguments)
            Issue.record("expected an error for \(arguments), got \(command)", sourceLocation: sourceLocation)
            return ""
        } catch let error as ToolCommandLineError {
            return error.message
        }
    }

    static func help(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        guard case .help(let text) = try parse(arguments) else {
            Issue.record("expected help for \(arguments)", sourceLocation: sourceLocation)
            return ""
        }
        return text
    }
}

@Suite struct ToolFlagForms {
    @Test(arguments: [
        ["search", "--query", "swift regex"],
        ["search", "--query=swift regex"],
    ])
    func separateAndAttachedValues(arguments: [String]) throws {
        #expect(try WebToolkitFixture.input(arguments) == ["query": "swift regex"])
    }

    @Test func attachedValuesKeepEverythingAfterTheFirstEquals() throws {
        #expect(try WebToolkitFixture.input(["search", "--query=a=b=c"]) == ["query": "a=b=c"])
        #expect(try WebToolkitFixture.input(["search", "--query="]) == ["query": ""])
        #expect(try WebToolkitFixture.input(["search", "--query=--help"]) == ["query": "--help"])
        #expect(try WebToolkitFixture.input(["search", "--query", "-h"]) == ["query": "-h"])
        #expect(try WebToolkitFixture.input(["search", "--query", "-"]) == ["query": "-"])
    }

    @Test(arguments: [
        ("--max-results", "maxResults"), ("--maxResults", "maxResults"), ("--max_results", "maxResults"), ("--MaxResults", "maxResults"),
        ("--min-score", "min_score"), ("--min_score", "min_score"), ("--minScore", "min_score"),
        ("--url-path", "URLPath"), ("--URLPath", "URLPath"), ("--url_path", "URLPath"),
    ])
    func namesAsWrittenOrInKebabCase(flag: String, property: String) throws {
        let input = try WebToolkitFixture.input(["search", flag, "4"])
        let expected: JSONValue = property == "URLPath" ? .string("4") : .number(4)
        #expect(input == .object([property: expected]))
    }

    @Test func toolNamesInKebabCase() throws {
        guard case .call(let tool, let input) = try WebToolkitFixture.parse(["fetch-page", "--url", "https://x.org"]) else {
            Issue.record("expected a call")
            return
        }
        #expect(tool == "fetch_page")
        #expect(input == ["url": "https://x.org"])
    }

    @Test func aToolWithoutPropertiesTakesNoFlags() throws {
        #expect(try WebToolkitFixture.input(["status"]) == .object([:]))
        #expect(try WebToolkitFixture.error(["status", "--x", "1"]).contains("the flags are: --json"))
    }
}

@Suite struct ToolFlagValues {
    @Test(arguments: [("5", 5.0), ("3.0", 3.0), ("-7", -7.0), ("1e3", 1000.0), (" 12 ", 12.0)])
    func integers(text: String, value: Double) throws {
        #expect(try WebToolkitFixture.input(["search", "--max-results", text]) == ["maxResults": .number(value)])
    }

    @Test(arguments: ["3.5", "abc", "", "0x10", "+5", "1,000", "NaN", "5px"])
    func badIntegersNameTheFlagAndTheValue(text: String) throws {
        let message = try WebToolkitFixture.error(["search", "--max-results", text])
        #expect(message.hasPrefix("agentbox-web search: --max-results expects an integer, got \(JSONFacts.quoted(text))"))
        #expect(message.hasSuffix("run 'agentbox-web search --help' for its flags"))
    }

    @Test func numbers() throws {
        #expect(try WebToolkitFixture.input(["search", "--min-score", "0.25"]) == ["min_score": .number(0.25)])
        #expect(try WebToolkitFixture.input(["search", "--min-score=-1.5e-2"]) == ["min_score": .number(-0.015)])
        #expect(try WebToolkitFixture.error(["search", "--min-score", "high"]).contains(#"--min-score expects a number, got "high""#))
    }

    static let booleanForms: [([String], JSONValue)] = [
        (["--safe"], true), (["--safe=true"], true), (["--safe=false"], false), (["--safe=FALSE"], false),
        (["--no-safe"], false), (["--no_safe"], false), (["--noSafe"], false), (["--safe", "false"], false), (["--safe", "true"], true),
    ]

    @Test(arguments: booleanForms)
    func booleans(flags: [String], value: JSONValue) throws {
        #expect(try WebToolkitFixture.input(["search"] + flags) == ["safe": value])
    }

    @Test func aBareBooleanLeavesTheNextFlagAlone() throws {
        #expect(try WebToolkitFixture.input(["search", "--safe", "--query", "q"]) == ["safe": true, "query": "q"])
    }

    @Test func badBooleans() throws {
        #expect(try WebToolkitFixture.error(["search", "--safe=maybe"]).contains(#"--safe expects true or false, got "maybe""#))
        #expect(try WebToolkitFixture.error(["search", "--no-safe=false"]).contains("--no-safe takes no value"))
        #expect(try WebToolkitFixture.error(["search", "--safe", "yes"]).contains(#"unexpected argument "yes""#))
        #expect(try WebToolkitFixture.error(["search", "--no-query"]).contains("unknown flag --no-query"))
    }

    @Test func arraysRepeatTheFlag() throws {
        #expect(try WebToolkitFixture.input(["search", "--tags", "a", "--tags=b c", "--tags", "a"]) == ["tags": ["a", "b c", "a"]])
        #expect(try WebToolkitFixture.input(["search", "--ids", "1", "--ids=2"]) == ["ids": [1, 2]])
        #expect(try WebToolkitFixture.input(["search", "--flags", "true", "--flags=false"]) == ["flags": [true, false]])
        #expect(try WebToolkitFixture.input(["search", "--tags", "[1]"]) == ["tags": ["[1]"]])
        #expect(try WebToolkitFixture.input(["search", "--matrix", "[1,2]", "--matrix", "[]"]) == ["matrix": [[1, 2], []]])
        #expect(try WebToolkitFixture.error(["search", "--ids", "1", "--ids", "two"]).contains(#"--ids expects an integer, got "two""#))
        #expect(try WebToolkitFixture.error(["search", "--flags"]).contains("--flags needs a value"))
        #expect(try WebToolkitFixture.error(["search", "--matrix", "[1"]).contains("--matrix expects JSON array"))
    }

    @Test func objectsAreJSON() throws {
        #expect(try WebToolkitFixture.input(["search", "--filter", #"{"site":"swift.org"}"#]) == ["filter": ["site": "swift.org"]])
        let message = try WebToolkitFixture.error(["search", "--filter", "site=swift.org"])
        #expect(message.hasPrefix("agentbox-web search: --filter expects JSON object (invalid JSON at byte 0"))
    }

    @Test func nullWhereTheTypeAllowsIt() throws {
        #expect(try WebToolkitFixture.input(["search", "--limit", "null"]) == ["limit": .null])
        #expect(try WebToolkitFixture.input(["search", "--limit", "3"]) == ["limit": 3])
        #expect(try WebToolkitFixture.input(["search", "--note", "null"]) == ["note": "null"])  // a string stays a string
        #expect(try WebToolkitFixture.input(["search", "--strict=null"]) == ["strict": .null])
        #expect(try WebToolkitFixture.input(["search", "--strict"]) == ["strict": true])
    }

    @Test func untypedPropertiesTakeJSONOrText() throws {
        #expect(try WebToolkitFixture.input(["search", "--anything", "[1,true]"]) == ["anything": [1, true]])
        #expect(try WebToolkitFixture.input(["search", "--anything", "42"]) == ["anything": 42])
        #expect(try WebToolkitFixture.input(["search", "--anything", "hello world"]) == ["anything": "hello world"])
        // An enum of strings without a type is a string.
        #expect(try WebToolkitFixture.input(["search", "--region", "eu"]) == ["region": "eu"])
    }

    @Test func enumValuesAreNotCheckedHere() throws {
        #expect(try WebToolkitFixture.input(["search", "--mode", "slow"]) == ["mode": "slow"])
    }
}

@Suite struct ToolJSONInput {
    @Test func jsonGivesTheWholeInput() throws {
        #expect(try WebToolkitFixture.input(["search", "--json", #"{"query":"q","maxResults":3}"#]) == ["query": "q", "maxResults": 3])
        #expect(try WebToolkitFixture.input(["search", #"--json={"query":"q"}"#]) == ["query": "q"])
        #expect(try WebToolkitFixture.input(["status", "--json", "{}"]) == .object([:]))
    }

    @Test func flagsReplaceItsFields() throws {
        let base = #"{"query":"q","maxResults":3,"tags":["x"],"extra":{"kept":true}}"#
        #expect(try WebToolkitFixture.input(["search", "--json", base, "--max-results", "7", "--tags", "y"])
            == ["query": "q", "maxResults": 7, "tags": ["y"], "extra": ["kept": true]])
        #expect(try WebToolkitFixture.input(["search", "--query", "flag", "--json", base]) == ["query": "flag", "maxResults": 3, "tags": ["x"], "extra": ["kept": true]])
    }

    @Test func badJSON() throws {
        #expect(try WebToolkitFixture.error(["search", "--json", "[1]"]).contains("--json must be a JSON object (the tool's whole input), not array"))
        #expect(try WebToolkitFixture.error(["search", "--json", "{query: 1}"]).contains("--json is not valid JSON (invalid JSON at byte 1: expected a key)"))
        #expect(try WebToolkitFixture.error(["search", "--json", "{}", "--json", "{}"]).contains("--json is given more than once"))
        #expect(try WebToolkitFixture.error(["search", "--json"]).contains("--json needs a value"))
    }
}

@Suite struct ToolCommandLineErrors {
    @Test func unknownTool() throws {
        let message = try WebToolkitFixture.error(["serch", "--query", "x"])
        #expect(message == """
            agentbox-web: unknown tool "serch" (did you mean search?); the tools are: search, fetch_page, status.
            run 'agentbox-web --help' for usage
            """)
        #expect(try WebToolkitFixture.error(["browse"]).hasPrefix(#"agentbox-web: unknown tool "browse"; the tools are"#))
    }

    @Test func unknownFlag() throws {
        let message = try WebToolkitFixture.error(["search", "--qeury", "x"])
        #expect(message.hasPrefix("agentbox-web search: unknown flag --qeury (did you mean --query?); the flags are: --query, --anything, --filter"))
        #expect(message.contains("--max-results"))
        #expect(message.contains("--json.\nrun 'agentbox-web search --help' for its flags"))
        #expect(try WebToolkitFixture.error(["search", "--max-result", "1"]).contains("(did you mean --max-results?)"))
        #expect(!(try WebToolkitFixture.error(["search", "--zzzzzz", "1"]).contains("did you mean")))
    }

    @Test func missingValues() throws {
        #expect(try WebToolkitFixture.error(["search", "--query"]) == """
            agentbox-web search: --query needs a value.
            run 'agentbox-web search --help' for its flags
            """)
        #expect(try WebToolkitFixture.error(["search", "--query", "--safe"]).contains(
            #"--query needs a value, but is followed by "--safe" (to give a value that starts with --, attach it: --query=--safe)"#))
    }

    @Test func strayArguments() throws {
        #expect(try WebToolkitFixture.error(["search", "swift"]).contains(#"unexpected argument "swift": values follow a flag (--name value)"#))
        #expect(try WebToolkitFixture.error(["search", "--query", "a", "b"]).contains(#"unexpected argument "b""#))
        #expect(try WebToolkitFixture.error(["search", "-q", "x"]).contains(#"unknown option "-q": flags are written --name value or --name=value"#))
        #expect(try WebToolkitFixture.error(["search", "--", "x"]).contains("unexpected --: this command takes no positional arguments"))
        #expect(try WebToolkitFixture.error(["--query", "x"]) == """
            agentbox-web: expected a tool's name before --query; the tools are: search, fetch_page, status.
            run 'agentbox-web --help' for usage
            """)
    }

    @Test func repeatedScalarFlag() throws {
        #expect(try WebToolkitFixture.error(["search", "--query", "a", "--query=b"]).contains(
            "--query is given more than once (only array properties can be repeated)"))
        #expect(try WebToolkitFixture.error(["search", "--safe", "--no-safe"]).contains("--safe is given more than once"))
    }

    @Test func bounds() throws {
        let tooMany = ["search"] + Array(repeating: "--tags=x", count: ToolCommandLine.maximumArguments)
        #expect(try WebToolkitFixture.error(tooMany).hasPrefix("agentbox-web: too many arguments (1001; at most 1000)"))
        #expect(try WebToolkitFixture.input(Array(tooMany.dropLast())) != nil)

        let huge = String(repeating: "x", count: ToolCommandLine.maximumArgumentBytes + 1)
        #expect(try WebToolkitFixture.error(["search", "--query", huge]).hasPrefix(
            "agentbox-web: argument 3 is 1048577 bytes; each argument may be at most 1 MiB (1048576 bytes)"))
        let largest = String(repeating: "x", count: ToolCommandLine.maximumArgumentBytes)
        #expect(try WebToolkitFixture.input(["search", "--query", largest]) == ["query": .string(largest)])

        let five = Array(repeating: "--tags=" + String(repeating: "y", count: 1_000_000), count: 5)
        #expect(try WebToolkitFixture.error(["search"] + five).contains("together they may hold at most 4 MiB"))
    }

    @Test func ambiguousKebabForms() throws {
        let schema = try parseJSON(#"{"type":"object","properties":{"max_results":{"type":"integer"},"maxResults":{"type":"integer"}}}"#)
        let tools = [ToolSummary(name: "t", description: "", inputSchema: schema)]
        func parse(_ arguments: [String]) throws(ToolCommandLineError) -> ToolCommand {
            try ToolCommandLine.parse(toolkit: "k", description: "", tools: tools, arguments: arguments)
        }
        #expect(throws: ToolCommandLineError.self) { try parse(["t", "--max-results", "1"]) }
        do {
            _ = try parse(["t", "--max-results", "1"])
        } catch {
            #expect(error.message.contains("--max-results could be --maxResults or --max_results; write the property's exact name"))
        }
        #expect(try parse(["t", "--max_results", "1", "--maxResults", "2"]) == .call(tool: "t", input: ["max_results": 1, "maxResults": 2]))
        guard case .help(let help) = try parse(["t", "--help"]) else { return }
        #expect(help.contains("  --max_results <integer>"))
        #expect(help.contains("  --maxResults <integer>"))
    }

    @Test func errorDescriptionIsTheMessage() {
        #expect(ToolCommandLineError(message: "m").description == "m")
    }
}

@Suite struct ToolCommandHelpText {
    @Test(arguments: [[], ["--help"], ["-h"], ["help"]])
    func toolkitHelp(arguments: [String]) throws {
        let help = try WebToolkitFixture.help(arguments)
        #expect(help == """
            Usage: agentbox-web <tool> [--flag value ...]
                   agentbox-web <tool> --json '{"field": value, ...}'
                   agentbox-web <tool> --help

            Search and read the web.

            Tools:
              search      Search the web.
              fetch_page  Fetch a page as text.
              status

            Example:
              agentbox-web search --query <string>

            Run 'agentbox-web <tool> --help' for a tool's flags.

            """)
    }

    @Test(arguments: [["search", "--help"], ["search", "-h"], ["help", "search"], ["search", "--query", "x", "--help"], ["search", "--bogus", "--help"]])
    func toolHelpIsAskedForManyWays(arguments: [String]) throws {
        #expect(try WebToolkitFixture.help(arguments).hasPrefix("Usage: agentbox-web search [flags]\n"))
    }

    @Test func toolHelpListsEveryFlag() throws {
        let help = try WebToolkitFixture.help(["search", "--help"])
        let expectedLines = [
            "Usage: agentbox-web search [flags]",
            "       agentbox-web search --json '{...}'",
            "Search the web.",
            "Returns titles and links.",
            "Flags:",
            "  --query <string>  (required)",
            "      What to search for.",
            "  --max-results <integer>  (optional; default: 10; JSON field \"maxResults\")",
            "      How many results to return.",
            "      At most 50.",
            "  --min-score <number>  (optional; JSON field \"min_score\")",
            "  --safe, --no-safe  (optional boolean; default: true)",
            "      Filter adult content.",
            "  --tags <string> ...  (optional; an array: repeat the flag for each item)",
            "  --ids <integer> ...  (optional; an array: repeat the flag for each item)",
            "  --mode <string>  (optional; one of: \"fast\", \"deep\")",
            "  --region <string>  (optional; one of: \"eu\", \"us\")",
            "  --filter <JSON object>  (optional)",
            "  --matrix <JSON array> ...  (optional; an array: repeat the flag for each item)",
            "  --note <string>  (optional)",
            "  --limit <integer>  (optional)",
            "  --anything <JSON or text>  (optional)",
            "  --url-path <string>  (optional; JSON field \"URLPath\")",
            "  --json '<JSON object>'  (the whole input as one JSON object; flags given beside it replace its fields)",
            "  -h, --help  (show this help)",
            "Example:",
            "  agentbox-web search --query <string>",
        ]
        let lines = help.split(separator: "\n").map(String.init)
        for line in expectedLines {
            #expect(lines.contains(line), "missing: \(line)\n\(help)")
        }
        // Required flags first, then the rest by name.
        let query = try #require(help.firstRange(of: "--query <string>"))
        let anything = try #require(help.firstRange(of: "--anything"))
        #expect(query.lowerBound < anything.lowerBound)
    }

    @Test func toolHelpExampleUsesTheSchemasExamples() throws {
        let help = try WebToolkitFixture.help(["fetch_page", "--help"])
        #expect(help.contains("  agentbox-web fetch_page --url https://example.com\n"))
        #expect(help.contains("  --url <string>  (required)\n"))
    }

    @Test func toolWithoutFlagsOrDescription() throws {
        #expect(try WebToolkitFixture.help(["status", "--help"]) == """
            Usage: agentbox-web status
                   agentbox-web status --json '{...}'

            Flags:
              --json '<JSON object>'  (the whole input as one JSON object; flags given beside it replace its fields)
              -h, --help  (show this help)

            Example:
              agentbox-web status

            """)
    }

    @Test func reservedPropertyNamesAreSetThroughJSON() throws {
        let schema = try parseJSON(#"{"type":"object","properties":{"json":{"type":"string"},"help":{"type":"boolean"},"q":{"type":"string"}}}"#)
        let tools = [ToolSummary(name: "t", description: "", inputSchema: schema)]
        let help = try ToolCommandLine.parse(toolkit: "k", description: "", tools: tools, arguments: ["t", "-h"])
        guard case .help(let text) = help else {
            Issue.record("expected help")
            return
        }
        #expect(text.contains(#"Set "help", "json" inside --json: its flag name is the command's own."#))
        #expect(!text.contains("--json <string>"))
        let call = try ToolCommandLine.parse(toolkit: "k", description: "", tools: tools, arguments: ["t", "--json", #"{"json":"x"}"#, "--q", "y"])
        #expect(call == .call(tool: "t", input: ["json": "x", "q": "y"]))
    }

    @Test func aToolkitWithoutTools() throws {
        let help = try ToolCommandLine.parse(toolkit: "empty", description: "", tools: [], arguments: [])
        guard case .help(let text) = help else { return }
        #expect(text.contains("Tools:\n  (none)\n"))
        #expect(throws: ToolCommandLineError(message: "agentbox-empty: unknown tool \"x\"; this toolkit has no tools.\nrun 'agentbox-empty --help' for usage")) {
            try ToolCommandLine.parse(toolkit: "empty", description: "", tools: [], arguments: ["x"])
        }
    }

    @Test func shellQuoting() {
        #expect(ToolCommandHelp.shellQuoted("abc-1.2/x") == "abc-1.2/x")
        #expect(ToolCommandHelp.shellQuoted("two words") == "'two words'")
        #expect(ToolCommandHelp.shellQuoted("it's") == #"'it'\''s'"#)
        #expect(ToolCommandHelp.shellQuoted("") == "''")
        #expect(ToolCommandHelp.shellQuoted("-x") == "'-x'")
    }
}

@Suite struct ToolFlagSpellingTests {
    @Test(arguments: [
        ("maxResults", "max-results"), ("max_results", "max-results"), ("MaxResults", "max-results"), ("max-results", "max-results"),
        ("URLPath", "url-path"), ("userID", "user-id"), ("HTTPServer2", "http-server2"), ("v2Name", "v2-name"), ("__x__", "x"),
        ("query", "query"), ("a__b", "a-b"), ("Ünïcode_Naïve", "ünïcode-naïve"),
    ])
    func kebabCase(name: String, kebab: String) {
        #expect(FlagSpelling.normalized(name) == kebab)
    }

    @Test func suggestions() {
        #expect(FlagSpelling.suggestion(for: "qeury", among: ["query", "safe"]) == "query")
        #expect(FlagSpelling.suggestion(for: "maxResult", among: ["max-results", "min-score"]) == "max-results")
        #expect(FlagSpelling.suggestion(for: "xyz", among: ["query"]) == nil)
        #expect(FlagSpelling.suggestion(for: String(repeating: "q", count: 1_000), among: ["query"]) == nil)
        #expect(FlagSpelling.editDistance(Array("kitten".unicodeScalars), Array("sitting".unicodeScalars)) == 3)
        #expect(FlagSpelling.editDistance(Array("ab".unicodeScalars), Array("ba".unicodeScalars)) == 1)
        #expect(FlagSpelling.editDistance([], Array("abc".unicodeScalars)) == 3)
    }
}

@Suite struct ToolCommandLineAndValidator {
    @Test func theServerValidatesWhatTheCommandLineMade() throws {
        let tools = try WebToolkitFixture.tools
        let validator = try JSONSchemaValidator.toolInput(tools[0].inputSchema)
        let missing = try #require(try WebToolkitFixture.input(["search", "--max-results", "0"]))
        #expect(validator.violations(of: missing).map(\.description) == [
            #"missing required property "query""#, "/maxResults: must be at least 1, got 0",
        ])
        let good = try #require(try WebToolkitFixture.input(["search", "--query", "q", "--mode", "deep", "--tags", "a", "--no-safe"]))
        #expect(validator.violations(of: good).isEmpty)
        let bad = try #require(try WebToolkitFixture.input(["search", "--query", "q", "--mode", "slow"]))
        #expect(validator.violations(of: bad).map(\.description) == [#"/mode: must be one of "fast", "deep"; got string "slow""#])
    }
}
