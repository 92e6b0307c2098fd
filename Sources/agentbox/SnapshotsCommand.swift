import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox snapshots …`: snapshots of a workspace's files. Fork one with `agentbox workspaces create NEW
/// --from-snapshot ID`.
struct SnapshotsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshots", abstract: "Take, list and delete snapshots of a workspace's files.",
        discussion: """
            Examples:
              agentbox snapshots create demo
              agentbox workspaces create demo-copy --from-snapshot SNAPSHOT_ID
            """,
        subcommands: [Create.self, List.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a snapshot of /workspace and /home/agent; prints its id.",
            discussion: """
                Example:
                  agentbox snapshots create demo
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let snapshot = try await client.makeClient().createSnapshot(key)
                if json { return try printJSON(snapshot) }
                print(snapshot.id)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a workspace's snapshots, oldest first.",
            discussion: """
                Example:
                  agentbox snapshots list demo --json
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let list = try await client.makeClient().snapshots(key)
                if json { return try printJSON(list) }
                printRows([["ID", "CREATED", "BYTES"]] + list.items.map { [$0.id, RFC3339.format($0.createdAt), String($0.sizeBytes)] })
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a snapshot.",
            discussion: """
                Example:
                  agentbox snapshots delete demo SNAPSHOT_ID
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The snapshot id.") var id: String

        func run() async throws {
            try await runClientCall {
                try await client.makeClient().deleteSnapshot(key, id)
                print("deleted \(id)")
            }
        }
    }
}
