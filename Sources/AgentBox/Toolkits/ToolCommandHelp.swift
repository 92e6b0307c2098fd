import AgentBoxAPI

/// The help a toolkit's command prints: for the toolkit (its tools) and for one tool (its flags).
enum ToolCommandHelp {
    /// `agentbox-web --help`: usage, the toolkit's description, each tool with the first line of its description,
    /// an example.
    static func toolkit(command: String, description: String, tools: [ToolSummary]) -> String {
        var lines = [
            "Usage: \(command) <tool> [--flag value ...]",
            "       \(command) <tool> --json '{\"field\": value, ...}'",
            "       \(command) <tool> --help",
        ]
        let about = description.trimmingWhitespace
        if !about.isEmpty { lines += ["", about] }
        lines += ["", "Tools:"]
        if tools.isEmpty { lines.append("  (none)") }
        let width = min(tools.map(\.name.count).max() ?? 0, 24)
        for tool in tools {
            let summary = firstLine(of: tool.description)
            let name = tool.name.padding(to: width)
            lines.append(summary.isEmpty ? "  \(tool.name)" : "  \(name)  \(summary)")
        }
        if let tool = tools.first {
            lines += ["", "Example:", "  " + example(command: command, tool: tool)]
        }
        lines += ["", "Run '\(command) <tool> --help' for a tool's flags."]
        return lines.joined(separator: "\n") + "\n"
    }

    /// `agentbox-web search --help`: usage, the tool's description, each flag (type, required or optional, allowed
    /// values, default, description), `--json`, an example.
    static func tool(command: String, tool: ToolSummary) -> String {
        let flags = ToolFlagSet(schema: tool.inputSchema)
        var lines = [
            "Usage: \(command) \(tool.name)\(flags.flags.isEmpty ? "" : " [flags]")",
            "       \(command) \(tool.name) --json '{...}'",
        ]
        let about = tool.description.trimmingWhitespace
        if !about.isEmpty { lines += ["", about] }
        lines += ["", "Flags:"]
        for flag in flags.flags {
            lines.append("  " + usage(of: flag) + "  (" + attributes(of: flag).joined(separator: "; ") + ")")
            if let text = flag.schema["description"]?.stringValue?.trimmingWhitespace, !text.isEmpty {
                lines += text.split(separator: "\n", omittingEmptySubsequences: false).map { "      " + $0 }
            }
        }
        lines.append("  --json '<JSON object>'  (the whole input as one JSON object; flags given beside it replace its fields)")
        if !flags.unreachable.isEmpty {
            let names = flags.unreachable.map { JSONFacts.quoted($0) }.joined(separator: ", ")
            lines.append("      Set \(names) inside --json: its flag name is the command's own.")
        }
        lines.append("  -h, --help  (show this help)")
        lines += ["", "Example:", "  " + example(command: command, tool: tool)]
        return lines.joined(separator: "\n") + "\n"
    }

    /// `--max-results <integer>`, `--verbose, --no-verbose`, `--tag <string> ...`.
    private static func usage(of flag: ToolFlag) -> String {
        let name = "--\(flag.spelling)"
        switch flag.kind {
        case .boolean: return "\(name), --no-\(flag.spelling)"
        case .list(let element): return "\(name) <\(element.label)> ..."
        default: return "\(name) <\(flag.kind.label)>"
        }
    }

    /// `required`, `an array: repeat the flag…`, `one of: "fast", "deep"`, `default: 10`, `JSON field "maxResults"`.
    private static func attributes(of flag: ToolFlag) -> [String] {
        var parts = [flag.isRequired ? "required" : "optional"]
        if case .boolean = flag.kind { parts[0] += " boolean" }
        if case .list = flag.kind { parts.append("an array: repeat the flag for each item") }
        let schema = flag.schema
        let literals = ToolFlagKind.literals(of: schema)
            ?? ToolFlagKind.literals(of: schema["items"] ?? .null)  // an array of enum values
        if let literals, !literals.isEmpty {
            let shown = literals.prefix(20).map { JSONFacts.literal($0, limit: 40) }.joined(separator: ", ")
            parts.append("one of: " + shown + (literals.count > 20 ? ", …" : ""))
        }
        if let value = schema["default"] { parts.append("default: " + JSONFacts.literal(value)) }
        if flag.spelling != flag.property { parts.append("JSON field \(JSONFacts.quoted(flag.property))") }
        return parts
    }

    /// `agentbox-web search --query <string> --limit 10`: the required flags, with an example value where the schema
    /// has one (`examples`, `default`, the first enum value), else a placeholder.
    static func example(command: String, tool: ToolSummary) -> String {
        let flags = ToolFlagSet(schema: tool.inputSchema).flags
        let shown = flags.filter(\.isRequired).isEmpty ? Array(flags.prefix(1)) : flags.filter(\.isRequired)
        var words = [command, tool.name]
        for flag in shown.prefix(8) {
            if case .boolean = flag.kind {
                words.append("--\(flag.spelling)")
                continue
            }
            words += ["--\(flag.spelling)", sampleValue(for: flag)]
        }
        return words.joined(separator: " ")
    }

    private static func sampleValue(for flag: ToolFlag) -> String {
        let schema = flag.schema
        var sample: JSONValue?
        if case .array(let values) = schema["examples"] { sample = values.first }
        sample = sample ?? schema["default"] ?? ToolFlagKind.literals(of: schema)?.first
        if case .list = flag.kind, case .array(let items)? = sample { sample = items.first }
        guard let sample else {
            if case .list(let element) = flag.kind { return "<\(element.label)>" }
            return "<\(flag.kind.label)>"
        }
        let text = sample.stringValue ?? JSONFacts.literal(sample, limit: 200)
        return shellQuoted(text)
    }

    /// `text` as one shell word: bare when it is plain, else in single quotes.
    static func shellQuoted(_ text: String) -> String {
        let plain = !text.isEmpty && text.unicodeScalars.allSatisfy { scalar in
            scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_./:@%+,".unicodeScalars.contains(scalar)
        }
        if plain, !text.hasPrefix("-") { return text }
        return "'" + text.replacing("'", with: "'\\''") + "'"
    }

    /// The first non-empty line of `text`, cut to 100 characters.
    static func firstLine(of text: String) -> String {
        let line = text.split(whereSeparator: \.isNewline).first { !$0.allSatisfy(\.isWhitespace) } ?? ""
        return JSONFacts.shortened(String(line).trimmingWhitespace, to: 100)
    }
}

extension StringProtocol {
    /// Without white space at either end.
    fileprivate var trimmingWhitespace: String {
        guard let start = firstIndex(where: { !$0.isWhitespace }), let end = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[start...end])
    }

    /// Padded with spaces to `width` characters.
    fileprivate func padding(to width: Int) -> String {
        count >= width ? String(self) : String(self) + String(repeating: " ", count: width - count)
    }
}
