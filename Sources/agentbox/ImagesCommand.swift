import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox images …`: freeze a workspace's installed software and files, and start workspaces from it.
struct ImagesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images", abstract: "Create, list and delete images (a workspace's system layer and files, frozen).",
        discussion: """
            Examples:
              agentbox exec builder -- 'apt-get update && apt-get install -y ripgrep'
              agentbox images create tools --from builder --description "ripgrep and friends"
              agentbox workspaces create job-1 --image tools
            """,
        subcommands: [Create.self, List.self, Show.self, Remove.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Freeze a workspace as an image (what it installed under /usr, /etc, /var, and its files).",
            discussion: """
                Example:
                  agentbox images create tools --from builder
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The image's name: [a-z0-9][a-z0-9._-]{0,63}.") var name: String
        @Option(name: .customLong("from"), help: "The workspace to freeze.") var workspace: String
        @Option(help: "A description.") var description: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                FileHandle.standardError.write(Data("freezing workspace \(workspace) as image \(name)...\n".utf8))
                let image = try await client.makeClient().createImage(name, fromWorkspace: workspace, description: description)
                if json { return try printJSON(image) }
                print("\(image.name) (\(image.sizeBytes) bytes)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List images by name.",
            discussion: """
                Example:
                  agentbox images list --json
                """)
        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let list = try await client.makeClient().images()
                if json { return try printJSON(list) }
                printRows(
                    [["NAME", "FROM", "CREATED", "BYTES", "DESCRIPTION"]]
                        + list.items.map {
                            [$0.name, $0.fromWorkspace.rawValue, RFC3339.format($0.createdAt), String($0.sizeBytes), $0.description ?? ""]
                        })
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Show one image as JSON.",
            discussion: """
                Example:
                  agentbox images show tools
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The image's name.") var name: String

        func run() async throws {
            try await runClientCall { try printJSON(try await client.makeClient().image(name)) }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Delete an image (refused while a workspace or another image uses it).",
            discussion: """
                Example:
                  agentbox images rm tools
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The image's name.") var name: String

        func run() async throws {
            try await runClientCall {
                try await client.makeClient().deleteImage(name)
                print("deleted \(name)")
            }
        }
    }
}
