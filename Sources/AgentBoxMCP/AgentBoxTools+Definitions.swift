import AgentBoxAPI
import MCP

extension AgentBoxTools {
    /// The tools as `tools/list` describes them: names, descriptions and JSON Schemas of their arguments.
    public var definitions: [Tool] {
        let maxRead = limits.maxReadBytes >> 10
        let maxOutput = limits.maxExecOutputBytes >> 10
        let maxTail = limits.maxProcessOutputBytes >> 10
        return [
            tool(
                .exec,
                "Run a shell command line (/bin/sh -c) in an AgentBox workspace, a persistent Linux sandbox, and wait for it. Returns "
                    + "exitCode, stdout, stderr (the first \(maxOutput) KiB of each; truncated says more was written), timedOut and durationMs. "
                    + "The default cwd is /workspace. The command and everything it started are killed at timeoutMs.",
                properties: [
                    "command": ["type": "string", "description": "A shell command line, e.g. \"ls -la && python3 --version\"."],
                    "cwd": path("The working directory"),
                    "timeoutMs": [
                        "type": "integer", "minimum": 1, "maximum": .int(limits.maxExecTimeoutMs),
                        "description": .string("Kill the command after this many milliseconds (default \(limits.defaultExecTimeoutMs))."),
                    ],
                    "env": ["type": "object", "additionalProperties": ["type": "string"], "description": "Extra environment variables."],
                    "stdin": ["type": "string", "description": "Text written to the command's standard input."],
                ],
                required: ["command"], annotations: .init(destructiveHint: true, openWorldHint: true)),
            tool(
                .readFile,
                "Read a file of a workspace. Returns {path, size, encoding, content, truncated}: content is the text, or base64 when "
                    + "the file is not UTF-8 (encoding says which); files larger than \(maxRead) KiB are cut (truncated: true).",
                properties: ["path": path("The file")], required: ["path"], annotations: .init(readOnlyHint: true)),
            tool(
                .writeFile,
                "Write a file of a workspace whole, creating its parent directories; replaces an existing file atomically.",
                properties: [
                    "path": path("The file"),
                    "content": ["type": "string", "description": "The file's content: text, or base64 with encoding \"base64\"."],
                    "encoding": ["type": "string", "enum": ["utf8", "base64"], "description": "How content is given (default utf8)."],
                ],
                required: ["path", "content"], annotations: .init(destructiveHint: true, idempotentHint: true)),
            tool(
                .listFiles,
                "List a directory of a workspace: {items:[{name, path, type, size, modifiedAt}], truncated}, at most "
                    + "\(limits.maxListedEntries) entries.",
                properties: [
                    "path": path("The directory (default /workspace)"),
                    "recursive": ["type": "boolean", "description": "Include subdirectories' entries (default false)."],
                ],
                required: [], annotations: .init(readOnlyHint: true)),
            tool(
                .spawnProcess,
                "Start a long-running program in a workspace without waiting for it (a server, a watcher, a build): returns the "
                    + "process with its id. Read its output with process_output, stop it with kill_process.",
                properties: [
                    "command": [
                        "type": "array", "items": ["type": "string"], "minItems": 1,
                        "description": "The program and its arguments, without a shell: [\"python3\", \"-m\", \"http.server\", \"8000\"].",
                    ],
                    "cwd": path("The working directory"),
                    "env": ["type": "object", "additionalProperties": ["type": "string"], "description": "Extra environment variables."],
                ],
                required: ["command"], annotations: .init(destructiveHint: true, openWorldHint: true)),
            tool(
                .listProcesses, "The running and recently exited processes of a workspace.", properties: [:], required: [],
                annotations: .init(readOnlyHint: true)),
            tool(
                .processOutput,
                "A process's status (running or exited, with exitCode) and the last \(maxTail) KiB of its stdout and stderr.",
                properties: ["processId": processID], required: ["processId"], annotations: .init(readOnlyHint: true)),
            tool(
                .killProcess,
                "Send a signal to a running process (default TERM; KILL ends it and everything it started). Returns the process.",
                properties: [
                    "processId": processID,
                    "signal": ["type": "string", "enum": .array(ProcessSignal.allCases.map { .string($0.rawValue) }), "description": "Default TERM."],
                ],
                required: ["processId"], annotations: .init(destructiveHint: true)),
        ]
    }

    private var processID: Value { ["type": "string", "description": "The process's id (proc_…), from spawn_process or list_processes."] }

    private func path(_ what: String) -> Value {
        .object([
            "type": "string",
            "description": .string("\(what), in the workspace's view: absolute (/workspace/src/main.py) or relative to /workspace."),
        ])
    }

    /// One tool, with the `workspace` argument every tool takes added to its properties.
    private func tool(_ name: Name, _ description: String, properties: [String: Value], required: [String], annotations: Tool.Annotations) -> Tool {
        var properties = properties
        var required = required
        var workspace: [String: Value] = ["type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"]
        if let defaultWorkspace {
            workspace["description"] = .string("The workspace's key (default \(defaultWorkspace)).")
        } else {
            workspace["description"] = "The key of the workspace to act on."
            required.insert("workspace", at: 0)
        }
        properties["workspace"] = .object(workspace)
        return Tool(
            name: name.rawValue, description: description,
            inputSchema: ["type": "object", "properties": .object(properties), "required": .array(required.map { .string($0) })],
            annotations: annotations)
    }
}
