import AgentBoxAPI

/// What the command line needs to know of a tool: its name, what it does, and its input's JSON Schema.
public struct ToolSummary: Sendable {
    public var name: String
    public var description: String
    /// An object schema; its top-level `properties` become the tool's flags.
    public var inputSchema: JSONValue

    public init(name: String, description: String, inputSchema: JSONValue) {
        self.name = name
        self.description = description
        self.inputSchema = inputSchema
    }
}

/// What a toolkit's command was asked to do.
public enum ToolCommand: Sendable, Equatable {
    /// Help to print on standard output; the command exits 0.
    case help(String)
    /// Call `tool` with `input`, always a JSON object (not yet checked against the tool's schema).
    case call(tool: String, input: JSONValue)
}

/// A command line that cannot be understood; the message is for standard error (the command exits 1) and ends
/// with where to find help.
public struct ToolCommandLineError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(message: String) { self.message = message }

    public var description: String { message }
}

/// The command line of a toolkit inside a workspace: `agentbox-{toolkit} {tool} --field value ... | --json '{...}'`.
///
/// Each top-level property of a tool's input schema is a flag, named as written or in kebab-case (`--maxResults`,
/// `--max_results` and `--max-results` all set `maxResults`), given as `--name value` or `--name=value`, its text
/// converted by the property's type:
/// - `string`: as it is; `integer` and `number`: a JSON number (`integer` without a fraction);
/// - `boolean`: bare for true (`--verbose`), `--verbose=false` or `--no-verbose` for false; `--verbose true` and
///   `--verbose false` work too;
/// - `array`: the flag repeated (`--tag a --tag b`), each value converted by `items`' type;
/// - `object`, several types, or no type: JSON (where the schema allows a string, text that is not JSON is the string).
/// `null` is the text `null` where the type allows it (and is not a string).
///
/// `--json '{...}'` gives the whole input; flags beside it replace its fields (a repeated array flag replaces the
/// array). A value that starts with `--` must be attached: `--query=--help`. Whether required properties are there
/// is not checked here: the server validates the input against the schema.
public enum ToolCommandLine {
    /// The most arguments a command line may have.
    public static let maximumArguments = 1_000
    /// The longest argument, in UTF-8 bytes (1 MiB).
    public static let maximumArgumentBytes = 1 << 20
    /// The most all arguments may hold together, in UTF-8 bytes (4 MiB).
    public static let maximumTotalBytes = 4 << 20

    /// Reads a toolkit command's `arguments` (without argv[0]); `toolkit` names the command, `agentbox-{toolkit}`.
    public static func parse(
        toolkit: String, description: String, tools: [ToolSummary], arguments: [String]
    ) throws(ToolCommandLineError) -> ToolCommand {
        let command = "agentbox-\(toolkit)"
        try checkBounds(arguments, command: command)
        guard let first = arguments.first, first != "--help", first != "-h" else {
            return .help(ToolCommandHelp.toolkit(command: command, description: description, tools: tools))
        }
        if first == "help", !tools.contains(where: { $0.name == "help" }) {
            guard arguments.count > 1 else {
                return .help(ToolCommandHelp.toolkit(command: command, description: description, tools: tools))
            }
            return .help(ToolCommandHelp.tool(command: command, tool: try findTool(arguments[1], in: tools, command: command)))
        }
        guard !first.hasPrefix("-") else {
            throw failure(command, "expected a tool's name before \(JSONFacts.shortened(first, to: 60))\(toolList(tools))")
        }
        let tool = try findTool(first, in: tools, command: command)
        let rest = arguments.dropFirst()
        // `--help` can never be a value (values that start with `--` must be attached), so it wins wherever it is.
        if rest.contains("--help") {
            return .help(ToolCommandHelp.tool(command: command, tool: tool))
        }
        var parser = ToolArgumentParser(command: "\(command) \(tool.name)", flags: ToolFlagSet(schema: tool.inputSchema))
        guard let input = try parser.parse(Array(rest)) else {
            return .help(ToolCommandHelp.tool(command: command, tool: tool))
        }
        return .call(tool: tool.name, input: .object(input))
    }

    private static func checkBounds(_ arguments: [String], command: String) throws(ToolCommandLineError) {
        guard arguments.count <= maximumArguments else {
            throw failure(command, "too many arguments (\(arguments.count); at most \(maximumArguments)); pass a large input with --json")
        }
        var total = 0
        for (index, argument) in arguments.enumerated() {
            let bytes = argument.utf8.count
            guard bytes <= maximumArgumentBytes else {
                throw failure(command, "argument \(index + 1) is \(bytes) bytes; each argument may be at most 1 MiB (\(maximumArgumentBytes) bytes)")
            }
            total += bytes
        }
        guard total <= maximumTotalBytes else {
            throw failure(command, "the arguments hold \(total) bytes; together they may hold at most 4 MiB (\(maximumTotalBytes) bytes)")
        }
    }

    /// The tool named `name`, or the one whose kebab-case name is `name`'s (`web-search` for `web_search`).
    private static func findTool(_ name: String, in tools: [ToolSummary], command: String) throws(ToolCommandLineError) -> ToolSummary {
        if let tool = tools.first(where: { $0.name == name }) { return tool }
        let normal = FlagSpelling.normalized(name)
        let matches = tools.filter { FlagSpelling.normalized($0.name) == normal }
        if matches.count == 1, let tool = matches.first { return tool }
        var message = "unknown tool \(JSONFacts.quoted(name, limit: 60))"
        if let close = FlagSpelling.suggestion(for: name, among: tools.map(\.name)) {
            message += " (did you mean \(close)?)"
        }
        throw failure(command, message + toolList(tools))
    }

    /// An error of the toolkit's command line (not of a tool's flags), pointing to the toolkit's help.
    private static func failure(_ command: String, _ message: String) -> ToolCommandLineError {
        ToolCommandLineError(message: "\(command): \(message).\nrun '\(command) --help' for usage")
    }

    private static func toolList(_ tools: [ToolSummary]) -> String {
        tools.isEmpty ? "; this toolkit has no tools" : "; the tools are: " + tools.map(\.name).joined(separator: ", ")
    }
}

/// Reads one tool's flags into its input object.
struct ToolArgumentParser {
    /// `agentbox-web search`, for messages.
    let command: String
    let flags: ToolFlagSet

    /// The object given with `--json`.
    private var base: [String: JSONValue]?
    /// The values of flags, by property.
    private var values: [String: JSONValue] = [:]
    /// The items of repeated (array) flags, by property.
    private var lists: [String: [JSONValue]] = [:]
    private var arguments: [String] = []
    private var position = 0

    init(command: String, flags: ToolFlagSet) {
        self.command = command
        self.flags = flags
    }

    /// The input, or `nil` when `-h` asked for help.
    mutating func parse(_ arguments: [String]) throws(ToolCommandLineError) -> [String: JSONValue]? {
        self.arguments = arguments
        position = 0
        while position < arguments.count {
            let argument = arguments[position]
            position += 1
            if argument == "-h" || argument == "--help" { return nil }
            guard argument.hasPrefix("--"), argument != "--" else { throw stray(argument) }
            let body = argument.dropFirst(2)
            let name: String
            let attached: String?
            if let equals = body.firstIndex(of: "=") {
                name = String(body[..<equals])
                attached = String(body[body.index(after: equals)...])
            } else {
                name = String(body)
                attached = nil
            }
            if FlagSpelling.normalized(name) == "json" {
                try readJSON(attached)
            } else {
                try readFlag(name, attached: attached)
            }
        }
        var input = base ?? [:]
        input.merge(values) { _, flag in flag }
        input.merge(lists.mapValues { .array($0) }) { _, flag in flag }
        return input
    }

    private mutating func readJSON(_ attached: String?) throws(ToolCommandLineError) {
        guard base == nil else { throw failure("--json is given more than once") }
        let text = try value(for: "--json", attached: attached)
        let parsed: JSONValue
        do {
            parsed = try JSONValue.parse(text)
        } catch {
            throw failure("--json is not valid JSON (\(error))")
        }
        guard case .object(let fields) = parsed else {
            throw failure("--json must be a JSON object (the tool's whole input), not \(JSONFacts.kind(of: parsed))")
        }
        base = fields
    }

    private mutating func readFlag(_ name: String, attached: String?) throws(ToolCommandLineError) {
        let shown = "--" + JSONFacts.shortened(name, to: 60)
        let flag: ToolFlag
        var negated = false
        switch flags.lookup(name) {
        case .found(let found): flag = found
        case .ambiguous(let candidates):
            throw failure("\(shown) could be " + candidates.map { "--\($0.property)" }.joined(separator: " or ")
                + "; write the property's exact name")
        case .unknown:
            // `--no-verbose` for a boolean `verbose`.
            let normal = FlagSpelling.normalized(name)
            guard normal.hasPrefix("no-"), case .found(let found) = flags.lookup(String(normal.dropFirst(3))),
                  found.kind == .boolean
            else { throw unknown(name) }
            guard attached == nil else { throw failure("\(shown) takes no value") }
            flag = found
            negated = true
        }
        let display = "--\(flag.spelling)"
        let converted: JSONValue
        if negated {
            converted = .bool(false)
        } else if case .boolean = flag.kind {
            converted = try boolean(display, attached: attached, acceptsNull: flag.acceptsNull)
        } else {
            let text = try value(for: display, attached: attached)
            converted = try convert(text, as: flag.kind, flag: display, acceptsNull: flag.acceptsNull)
        }
        if case .list = flag.kind {
            lists[flag.property, default: []].append(converted)
        } else {
            guard values[flag.property] == nil else {
                throw failure("\(display) is given more than once (only array properties can be repeated)")
            }
            values[flag.property] = converted
        }
    }

    /// A boolean flag's value: attached, or a following `true`/`false`, or true when bare.
    private mutating func boolean(_ flag: String, attached: String?, acceptsNull: Bool) throws(ToolCommandLineError) -> JSONValue {
        if let attached {
            if acceptsNull, attached == "null" { return .null }
            guard let value = Self.truth(attached) else {
                throw failure("\(flag) expects true or false, got \(JSONFacts.quoted(attached))")
            }
            return .bool(value)
        }
        if position < arguments.count, arguments[position] == "true" || arguments[position] == "false" {
            position += 1
            return .bool(arguments[position - 1] == "true")
        }
        return .bool(true)
    }

    private static func truth(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true": true
        case "false": false
        default: nil
        }
    }

    /// The value of a flag that needs one: attached (`--name=value`) or the next argument.
    private mutating func value(for flag: String, attached: String?) throws(ToolCommandLineError) -> String {
        if let attached { return attached }
        guard position < arguments.count else { throw failure("\(flag) needs a value") }
        let next = arguments[position]
        guard !next.hasPrefix("--") else {
            throw failure("\(flag) needs a value, but is followed by \(JSONFacts.quoted(next, limit: 40)) "
                + "(to give a value that starts with --, attach it: \(flag)=\(next.prefix(20)))")
        }
        position += 1
        return next
    }

    private func convert(_ text: String, as kind: ToolFlagKind, flag: String, acceptsNull: Bool) throws(ToolCommandLineError) -> JSONValue {
        if acceptsNull, text == "null", kind != .string { return .null }
        switch kind {
        case .string: return .string(text)
        case .integer, .number:
            guard case .number(let number)? = try? JSONValue.parse(text), kind == .number || JSONFacts.isInteger(number) else {
                throw failure("\(flag) expects \(kind == .integer ? "an integer" : "a number"), got \(JSONFacts.quoted(text))")
            }
            return .number(number)
        case .boolean:
            guard let value = Self.truth(text) else { throw failure("\(flag) expects true or false, got \(JSONFacts.quoted(text))") }
            return .bool(value)
        case .list(let element):
            return try convert(text, as: element, flag: flag, acceptsNull: false)
        case .json(let label, let textIsString):
            do {
                return try JSONValue.parse(text)
            } catch {
                if textIsString { return .string(text) }
                throw failure("\(flag) expects \(label) (\(error))")
            }
        }
    }

    private func unknown(_ name: String) -> ToolCommandLineError {
        let names = flags.flags.map(\.spelling)
        var message = "unknown flag --\(JSONFacts.shortened(name, to: 60))"
        if let close = FlagSpelling.suggestion(for: name, among: names) { message += " (did you mean --\(close)?)" }
        let listed = names.prefix(30).map { "--\($0)" } + (names.count > 30 ? ["…"] : []) + ["--json"]
        return failure(message + "; the flags are: " + listed.joined(separator: ", "))
    }

    private func stray(_ argument: String) -> ToolCommandLineError {
        let shown = JSONFacts.quoted(argument, limit: 40)
        if argument == "--" { return failure("unexpected --: this command takes no positional arguments") }
        if argument.hasPrefix("-"), argument.count > 1 {
            return failure("unknown option \(shown): flags are written --name value or --name=value")
        }
        return failure("unexpected argument \(shown): values follow a flag (--name value); quote a value that has spaces")
    }

    /// An error in a tool's flags, pointing to the tool's help.
    private func failure(_ message: String) -> ToolCommandLineError {
        ToolCommandLineError(message: "\(command): \(message).\nrun '\(command) --help' for its flags")
    }
}
