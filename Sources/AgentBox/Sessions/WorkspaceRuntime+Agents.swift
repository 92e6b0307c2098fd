import AgentBoxAPI
import AgentBoxSandbox
import Foundation

extension WorkspaceRuntime {
    /// Starts an agent's process in the workspace (booting it if it sleeps), with a pipe on its stdin and its
    /// output left to the caller. The process does not hold the workspace awake: a session's turns do.
    func launchAgentProcess(arguments: [String], cwd: String, env: [String: String]) async throws -> SandboxProcess {
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        let sandbox = try runningSandbox()
        var spec = try processSpec(arguments: arguments, display: arguments[0], cwd: cwd, env: env, sandbox: sandbox)
        spec.stdin = .pipe
        do {
            return try await sandbox.spawn(spec)
        } catch let error as SandboxError {
            throw mapStartError(error, command: arguments[0], cwd: spec.workingDirectory)
        }
    }
}
