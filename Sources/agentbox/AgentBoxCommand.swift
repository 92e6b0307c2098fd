import AgentBoxAPI
import ArgumentParser

/// `agentbox`: runs the server and talks to it.
@main
struct AgentBoxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agentbox",
        abstract: "Persistent, isolated Linux workspaces for AI agents.",
        discussion: """
            Examples:
              agentbox serve --port 2468 --data-dir ./agentbox-data
              export AGENTBOX_ENDPOINT=http://127.0.0.1:2468 AGENTBOX_TOKEN=...
              agentbox workspaces create demo && agentbox exec demo -- 'uname -a'
            """,
        version: agentBoxVersion,
        subcommands: [
            ServeCommand.self, WorkspacesCommand.self, EventsCommand.self, ExecCommand.self, SpawnCommand.self,
            PsCommand.self, LogsCommand.self, KillCommand.self, FsCommand.self, CpCommand.self, SnapshotsCommand.self, ImagesCommand.self, CronCommand.self, ToolkitsCommand.self, TokensCommand.self, ShellCommand.self,
            FetchCommand.self, PreviewCommand.self, SessionCommand.self, PromptCommand.self, AgentsCommand.self, CredentialsCommand.self, MCPCommand.self, MockAgentCommand.self, DevCommand.self,
            MetricsCommand.self, TopCommand.self, UsageCommand.self, UICommand.self, ClusterCommand.self, DesktopCommand.self,
        ])
}
