import AgentBoxAPI
import ArgumentParser

/// `agentbox`: runs the server and talks to it.
@main
struct AgentBoxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agentbox",
        abstract: "Persistent, isolated Linux workspaces for AI agents.",
        version: agentBoxVersion,
        subcommands: [
            ServeCommand.self, WorkspacesCommand.self, EventsCommand.self, ExecCommand.self, SpawnCommand.self,
            PsCommand.self, LogsCommand.self, KillCommand.self, FsCommand.self, CpCommand.self, SnapshotsCommand.self, ShellCommand.self,
            FetchCommand.self, PreviewCommand.self, SessionCommand.self, PromptCommand.self, AgentsCommand.self, CredentialsCommand.self, MockAgentCommand.self, DevCommand.self,
        ])
}
