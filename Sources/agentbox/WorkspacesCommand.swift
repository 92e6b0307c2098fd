import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox workspaces …`: manage workspaces on a server.
struct WorkspacesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workspaces", abstract: "Create, list, inspect, sleep, wake and delete workspaces.",
        discussion: """
            Examples:
              agentbox workspaces create demo --memory-mb 512
              agentbox workspaces list
            """,
        subcommands: [List.self, Create.self, Info.self, Delete.self, Sleep.self, Wake.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List workspaces.",
            discussion: """
                Examples:
                  agentbox workspaces list
                  agentbox workspaces list --json
                """)
        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let items = try await client.makeClient().allWorkspaces()
                if json { return try printJSON(WorkspaceList(items: items)) }
                printTable(items)
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Get or create a workspace (does not boot it).",
            discussion: """
                On an existing workspace, the limits, --env, --egress, --toolkit and --llm-* options given replace its own (env and egress at once; egress needs an admin token); --image and --from-snapshot only shape a new one.
                Examples:
                  agentbox workspaces create demo --memory-mb 512 --env LANG=C.UTF-8
                  agentbox workspaces create ci --egress '*.github.com' --egress pypi.org:443
                  agentbox workspaces create demo-copy --from-snapshot SNAPSHOT_ID
                  agentbox workspaces create job-1 --image tools
                  agentbox workspaces create agent-1 --llm-max-requests 200 \\
                    --llm-max-output-tokens 100000 --llm-model claude-sonnet-4-5
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Option(help: "Memory limit in MiB.") var memoryMb: Int?
        @Option(help: "CPU limit in percent of one core.") var cpuPercent: Int?
        @Option(help: "Process limit.") var pids: Int?
        @Option(help: "Disk limit in MiB (enforced in the server's disk pool); on an existing workspace, changes it.") var diskMb: Int?
        @Option(name: .customLong("env"), help: "An environment variable NAME=VALUE (repeatable).") var env: [String] = []
        @Option(help: "Create it from this snapshot's files (a fork); unset options are the snapshot's workspace's.")
        var fromSnapshot: String?
        @Option(help: "Start it from this image: its installed software and files, copy-on-write.") var image: String?
        @Option(name: .customLong("toolkit"), help: "Attach this host toolkit: agentbox-NAME inside (repeatable).") var toolkits: [String] = []
        @Option(help: "LLM gateway budget: the most input tokens (uncached) its model calls may use.") var llmMaxInputTokens: Int64?
        @Option(help: "LLM gateway budget: the most output tokens.") var llmMaxOutputTokens: Int64?
        @Option(help: "LLM gateway budget: the most model requests.") var llmMaxRequests: Int64?
        @Option(name: .customLong("llm-model"), help: "A model the workspace may call through the gateway (repeatable; default any).")
        var llmModels: [String] = []
        @Option(
            help: "Outbound connections through the workspace's proxy: deny (the default), allow, or a host pattern such as *.github.com or api.anthropic.com:443 (repeatable).")
        var egress: [String] = []
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if egress.count > 1, egress.contains("deny") || egress.contains("allow") {
                throw ValidationError("--egress deny and --egress allow stand alone; patterns may repeat")
            }
        }

        func run() async throws {
            let environment = try parseEnvironment(env)
            let limits = WorkspaceLimits(memoryMb: memoryMb, cpuPercent: cpuPercent, pids: pids, diskMb: diskMb)
            let policy: EgressPolicy? =
                switch egress.first {
                case nil: nil
                case "deny": .deny
                case "allow": .allow
                default: .allowList(egress)
                }
            var config = WorkspaceConfig(
                limits: limits == WorkspaceLimits() ? nil : limits, env: environment.isEmpty ? nil : environment,
                network: policy.map { NetworkPolicy(egress: $0) }, fromSnapshot: fromSnapshot, image: image,
                toolkits: toolkits.isEmpty ? nil : toolkits)
            let budget = LLMBudget(
                maxInputTokens: llmMaxInputTokens, maxOutputTokens: llmMaxOutputTokens, maxRequests: llmMaxRequests,
                models: llmModels.isEmpty ? nil : llmModels)
            if !budget.isEmpty { config.llm = budget }
            try await runClientCall {
                let (workspace, created) = try await client.makeClient().putWorkspace(key, config: config)
                if json { return try printJSON(workspace) }
                // An existing workspace takes the limits, env, egress, toolkits and budget given (API.md): say so.
                let changes = config.limits != nil || config.env != nil || config.network != nil || config.toolkits != nil || config.llm != nil
                print("\(created ? "created" : changes ? "updated" : "exists ") \(workspace.key) (\(workspace.state.rawValue))")
            }
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a workspace as JSON.",
            discussion: """
                Example:
                  agentbox workspaces info demo
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String

        func run() async throws {
            try await runClientCall { try printJSON(try await client.makeClient().workspace(key)) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Destroy a workspace, its processes and its files.",
            discussion: """
                Example:
                  agentbox workspaces delete demo
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String

        func run() async throws {
            try await runClientCall {
                try await client.makeClient().deleteWorkspace(key)
                print("deleted \(key)")
            }
        }
    }

    struct Sleep: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put a workspace to sleep now.",
            discussion: """
                Example:
                  agentbox workspaces sleep demo
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String

        func run() async throws {
            try await runClientCall {
                let workspace = try await client.makeClient().sleepWorkspace(key)
                print("\(workspace.key) \(workspace.state.rawValue)")
            }
        }
    }

    struct Wake: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Boot a workspace now if it sleeps.",
            discussion: """
                Example:
                  agentbox workspaces wake demo
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String

        func run() async throws {
            try await runClientCall {
                let workspace = try await client.makeClient().wakeWorkspace(key)
                print("\(workspace.key) \(workspace.state.rawValue)")
            }
        }
    }
}

/// Prints workspaces as an aligned table.
func printTable(_ items: [Workspace]) {
    printRows(
        [["KEY", "STATE", "CREATED", "LAST ACTIVE"]]
            + items.map { [$0.key.rawValue, $0.state.rawValue, RFC3339.format($0.createdAt), RFC3339.format($0.lastActiveAt)] })
}

/// Prints rows as aligned columns.
func printRows(_ rows: [[String]]) {
    for line in alignedRows(rows) { print(line) }
}

/// Rows as aligned columns, one line each.
func alignedRows(_ rows: [[String]]) -> [String] {
    let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
    return rows.map { row in
        zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
            .trimmingCharacters(in: .whitespaces)
    }
}
