import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox cluster status`: the nodes of the cluster the server belongs to.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Look at the cluster of AgentBox nodes the server belongs to.",
        discussion: """
            Nodes share one Postgres store (serve --store postgres://… --node-id ID --advertise URL) and, for \
            checkpoints of workspaces' files, one S3-compatible blob store (--blobs). Any node answers any request. \
            See docs/CLUSTER.md.
            Examples:
              agentbox cluster status
              agentbox cluster status --json
            """,
        subcommands: [Status.self], defaultSubcommand: Status.self)

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status", abstract: "Show each node: up or down, when it was last seen, and the workspaces it serves.",
            discussion: """
                A node is up while it heart-beats (three times per lease) and answers other nodes.
                Examples:
                  agentbox cluster status
                  AGENTBOX_ENDPOINT=http://10.0.0.3:8080 agentbox cluster status --json
                """)
        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let status = try await client.makeClient().cluster()
                if json { return try printJSON(status) }
                let formatter = ISO8601DateFormatter()
                printRows(
                    [["NODE", "STATE", "ADVERTISE", "LAST SEEN", "WORKSPACES"]]
                        + status.nodes.map { node in
                            [node.id + (node.id == status.node ? " *" : ""), node.state, node.advertise, formatter.string(from: node.lastSeenAt),
                             node.workspaces.isEmpty ? "-" : "\(node.workspaces.count): " + node.workspaces.prefix(8).joined(separator: ", ")
                                + (node.workspaces.count > 8 ? ", …" : "")]
                        })
            }
        }
    }
}
