import AgentBoxAPI
import AgentBoxSandbox
import CoreMetrics
import Foundation
import NIOCore

extension WorkspaceRuntime {
    /// The most shells one workspace may have open at once.
    public static let maxShells = WorkspaceShells.maxOpen

    /// Opens a shell: `command` (default: the login shell) on a new terminal of the workspace. Boots the workspace;
    /// an open shell holds it awake until it exits or is closed.
    public func openShell(_ request: ShellCreateRequest) async throws -> Shell {
        let size = ShellResize(cols: request.cols ?? 80, rows: request.rows ?? 24)
        if let problem = size.validationProblem { throw AgentBoxError(.invalidArgument, problem) }
        if let command = request.command, command.isEmpty { throw AgentBoxError(.invalidArgument, "command must not be empty") }
        guard shells.openCount < Self.maxShells else {
            throw AgentBoxError(.conflict, "workspace '\(key)' has \(Self.maxShells) open shells, the most it may have")
        }
        let activity = try await beginActivity()
        do {
            let sandbox = try runningSandbox()
            let (command, args) = request.command.map { ($0, request.args ?? []) } ?? ("/bin/bash", request.args ?? ["-l"])
            let spec = try processSpec(
                arguments: [command] + args, display: command, cwd: request.cwd, env: request.env, user: request.user, sandbox: sandbox,
                extraEnvironment: ["TERM": "xterm-256color"])
            let terminal: SandboxTerminal
            do {
                terminal = try await sandbox.spawnTerminal(spec, cols: size.cols, rows: size.rows)
            } catch let error as SandboxError {
                throw mapStartError(error, command: command, cwd: spec.workingDirectory)
            }
            let info = Shell(
                id: RandomID.make(prefix: "shell_", length: 16), command: command, args: args, cols: size.cols, rows: size.rows,
                status: .running, pid: terminal.pid, createdAt: Date())
            let session = ShellSession(info: info, terminal: terminal)
            let id = info.id
            let pump = Task {
                let code = await session.run { [weak self] bytes in
                    let (text, encoding) = OutputText.encode(bytes)
                    await self?.publish(.shellData(ShellDataEvent(shellId: id, data: text, encoding: encoding)))
                }
                await self.shellExited(id, code: code, activity: activity)
            }
            shells.insert(session, pump: pump)
            metrics.shells.increment()
            return info
        } catch {
            endActivity(activity)
            throw error
        }
    }

    private func shellExited(_ id: String, code: Int32, activity: Activity) async {
        metrics.shells.decrement()
        await publish(.shellExit(ShellExitEvent(shellId: id, exitCode: code)))
        endActivity(activity)
        shells.exited(id)
    }

    /// The open shells and the most recently exited ones, oldest first. Never boots.
    public func shellList() -> ShellList {
        ShellList(items: shells.all.map(\.info))
    }

    /// The shell with `id`. Never boots.
    public func shell(_ id: String) throws -> ShellSession {
        guard let session = shells[id] else { throw AgentBoxError(.notFound, "no shell '\(id)' in workspace '\(key)'") }
        return session
    }

    /// Closes the shell: kills its process group and everything it started, and forgets it.
    public func closeShell(_ id: String) async throws {
        let session = try shell(id)
        session.terminal.killTree()
        await shells.pump(id)?.value
        shells.remove(id)
    }

    /// Waits until every shell's pump has finished (the sandbox is gone, so each ends).
    func drainShells() async {
        for pump in shells.runningPumps { await pump.value }
    }
}
