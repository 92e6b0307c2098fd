import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox toolkits …`: host toolkits, whose tools workspaces call as `agentbox-{toolkit}` commands.
struct ToolkitsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "toolkits", abstract: "Register, list and delete host toolkits; see a workspace's tool calls.",
        discussion: """
            A toolkit's tools run on the host side (a webhook, or a client serving them); a workspace created with
            `--toolkit NAME` calls them as `agentbox-NAME TOOL --flag value` inside, with no network needed.

            Examples:
              agentbox toolkits add web --file web-toolkit.json
              agentbox workspaces create demo --toolkit web
              agentbox exec demo -- agentbox-web search --query swift
              agentbox toolkits calls demo
            """,
        subcommands: [Add.self, List.self, Info.self, Remove.self, Calls.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add", abstract: "Register (or replace) a toolkit from a JSON file: {description, tools:[{name, description, inputSchema, handler}]}.",
            discussion: """
                Example (web-toolkit.json):
                  {"description": "Web tools", "tools": [{"name": "search", "description": "Search the web",
                    "inputSchema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
                    "handler": {"type": "http", "url": "http://127.0.0.1:9000/search", "headers": {"Authorization": "Bearer SECRET"}}}]}

                  agentbox toolkits add web --file web-toolkit.json
                  cat web-toolkit.json | agentbox toolkits add web --file -
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The toolkit's name ([a-z][a-z0-9-]{0,31}).") var name: String
        @Option(help: "The JSON file ('-' for stdin).") var file: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let data: Data
            do {
                data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw ValidationError("cannot read \(file): \(error.localizedDescription)")
            }
            let request: ToolkitRequest
            do {
                request = try AgentBoxJSON.makeDecoder().decode(ToolkitRequest.self, from: data)
            } catch {
                throw ValidationError("\(file) is not a toolkit ({description, tools:[...]}): \(error)")
            }
            try await runClientCall {
                let toolkit = try await client.makeClient().putToolkit(name, request)
                if json { return try printJSON(toolkit) }
                print("\(toolkit.name): \(toolkit.tools.map(\.name).joined(separator: ", "))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List the toolkits.",
            discussion: """
                Example:
                  agentbox toolkits list
                """)
        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let list = try await client.makeClient().toolkits()
                if json { return try printJSON(list) }
                printRows(
                    [["NAME", "TOOLS", "DESCRIPTION"]]
                        + list.items.map { [$0.name, $0.tools.map(\.name).joined(separator: ","), String($0.description.prefix(60))] })
            }
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "info", abstract: "Print a toolkit as JSON (handlers' headers left out).",
            discussion: """
                Example:
                  agentbox toolkits info web
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The toolkit's name.") var name: String

        func run() async throws {
            try await runClientCall { try printJSON(try await client.makeClient().toolkit(name)) }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Delete a toolkit.",
            discussion: """
                Example:
                  agentbox toolkits rm web
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The toolkit's name.") var name: String

        func run() async throws {
            try await runClientCall {
                try await client.makeClient().deleteToolkit(name)
                print("deleted \(name)")
            }
        }
    }

    struct Calls: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "calls", abstract: "A workspace's tool calls, in the order they ended (oldest first).",
            discussion: """
                Example:
                  agentbox toolkits calls demo --limit 20
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Option(help: "Calls after this cursor (a page's nextCursor).") var after: String?
        @Option(help: "How many (1...1000, default 100).") var limit: Int?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let page = try await client.makeClient().toolCalls(key, after: after, limit: limit)
                if json { return try printJSON(page) }
                printRows(
                    [["AT", "TOOLKIT", "TOOL", "STATUS", "MS", "ERROR"]]
                        + page.items.map {
                            [RFC3339.format($0.at), $0.toolkit, $0.tool, $0.status.rawValue, String($0.durationMs), String(($0.error ?? "").prefix(60))]
                        })
                if let next = page.nextCursor { print("more: --after \(next)") }
            }
        }
    }
}
