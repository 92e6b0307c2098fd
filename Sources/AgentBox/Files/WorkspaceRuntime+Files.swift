import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import Foundation
import NIOCore
import Synchronization

extension WorkspaceRuntime {
    /// The workspace's files, reached from the host: reading, listing and writing them never boots the workspace.
    public nonisolated func files() throws -> WorkspaceFiles {
        let owner = configuration.fileOwner(sandboxNumber: record.sandboxNumber)
        // The directories exist from the first boot on; a write before it creates them (owned by the workspace).
        for sub in ["workspace", "home"] {
            let path = directory.appendingPathComponent(sub).path
            if !FileManager.default.fileExists(atPath: path) {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                if let owner { chown(path, owner, owner) }
            }
        }
        var roots: [WorkspaceFiles.Root] = [
            .init(path: WorkspacePath(components: ["workspace"]), hostDirectory: directory.appendingPathComponent("workspace").path),
            .init(path: WorkspacePath(components: ["home", "agent"]), hostDirectory: directory.appendingPathComponent("home").path),
        ]
        for mount in record.config.mounts ?? [] {
            let path = try WorkspacePath(mount.path)
            switch mount.type {
            case .host:
                roots.append(
                    .init(path: path, hostDirectory: mount.hostPath ?? "/nonexistent", readOnly: mount.readOnly ?? true, opensWithoutSymlinks: true))
            case .tmpfs: roots.append(.init(path: path, hostDirectory: "", inMemory: true))
            }
        }
        return WorkspaceFiles(roots: roots, owner: owner)
    }

    /// The most file watches one workspace may have open at once.
    public static let maxWatchers = 32

    /// Changes below the directory `path` (and its subdirectories with `recursive`), until the stream is dropped
    /// or the workspace is destroyed. Watching does not boot the workspace and does not hold it awake; it sees what
    /// the fs API and the workspace's own processes change.
    public nonisolated func watch(_ path: WorkspacePath, recursive: Bool) throws -> AsyncStream<FileWatchEvent> {
        let files = try files()
        guard let id = watches.reserve() else {
            throw AgentBoxError(.conflict, "workspace '\(key)' has \(Self.maxWatchers) open watches, the most it may have")
        }
        do {
            // An open watch holds the runtime in memory (it is how a destroy finds the watch to end it).
            registry?.update(self)
            let (events, stop) = try FileWatcher.start(files: files, path: path, recursive: recursive) { [weak self] in
                guard let self else { return }
                self.watches.remove(id)
                self.registry?.update(self)
            }
            watches.started(id, stop: stop)
            return events
        } catch {
            watches.remove(id)
            registry?.update(self)
            throw error
        }
    }

    /// Ends every open file watch.
    nonisolated func stopWatchers() {
        watches.stopAll()
    }

    /// The host uid the workspace's processes run as (when the server runs as root).
    public nonisolated var hostUID: UInt32 {
        configuration.hostUID(sandboxNumber: record.sandboxNumber)
    }

    /// The host ids the workspace's files carry on disk (when the server runs as root): the server's storage range,
    /// which no process runs as, when sandboxes mount files idmapped; else the workspace's own range.
    public nonisolated var diskIDs: WorkspaceIDs {
        configuration.fileIDs(sandboxNumber: record.sandboxNumber)
    }

    /// Unpacks a tar stream under `path` (created if missing). Runs GNU tar inside the workspace's sandbox, so the
    /// archive can reach nothing the workspace could not (names with `..` or a leading `/` are refused by tar).
    /// Boots the workspace.
    public func upload(to path: WorkspacePath, tar chunks: some AsyncSequence<ByteBuffer, any Error> & Sendable) async throws -> UploadResult {
        try files().makeDirectory(path, recursive: true)
        let activity = try await beginActivity()
        defer { endActivity(activity) }
        // What it unpacks belongs to the workspace's agent user, as a file `PUT .../fs/file` writes does: tar runs as
        // uid 1000, keeping only the powers to write into (and set the times of) directories root owns.
        // `--preserve-permissions`: modes as the archive has them (tar as root kept them by itself; another user gets
        // the umask). `--no-overwrite-dir`: a directory that exists keeps its own mode and times (the archive's `./`
        // made the target, /home/agent say, as open as the local folder was: 0777).
        var tar = ["tar", "-x", "-v", "-f", "-", "--no-same-owner", "--preserve-permissions", "--no-overwrite-dir", "--delay-directory-restore"]
        if try runningSandbox().baseEnvironment["USER"] == "root" {
            let uid = WorkspaceIDs.agent
            tar = [
                "/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--inh-caps=+dac_override,+fowner",
                "--ambient-caps=+dac_override,+fowner", "--",
            ] + tar
        }
        let entry = try await start(
            arguments: tar,
            display: ("tar", ["-x", "(upload to \(path))"]), cwd: path.description, env: nil, stdin: .pipe,
            output: OutputBuffer.Policy.keepFirst, limit: 256 << 10, publishesOutput: false)
        let handle = entry.handle
        do {
            for try await chunk in chunks { try await handle.write(stdin: chunk) }
        } catch let error as SandboxError {
            // tar stopped reading (it failed); its exit status and message tell why.
            _ = error
        } catch {
            handle.killTree()
            throw error
        }
        await handle.closeStdin()
        // A caller that goes away takes its upload with it: the tar is killed, not left running (one the workspace's
        // processes stopped, same uid, would otherwise hold the workspace awake for good).
        let pump = entry.pump
        await withTaskCancellationHandler { await pump?.value } onCancel: { handle.killTree() }
        try Task.checkCancellation()
        guard entry.info.exitCode == 0 else {
            let message = String(decoding: entry.stderr.contents, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw AgentBoxError(.invalidArgument, "the tar archive could not be unpacked: \(message.isEmpty ? "exit \(entry.info.exitCode ?? -1)" : message)")
        }
        // tar -v lists member names as stored (often "./a"); they are shown as workspace paths, "." itself left out.
        let names = String(decoding: entry.stdout.contents, as: UTF8.self).split(separator: "\n")
        let paths = names.lazy.compactMap { try? WorkspacePath(path.description + "/" + $0) }.filter { $0 != path }.prefix(1000)
        let count = entry.stdoutLines - names.filter { $0 == "./" || $0 == "." }.count
        return UploadResult(paths: paths.map(\.description), count: count)
    }

    /// A tar stream of the directory at `path` (its contents, relative to it), produced by GNU tar inside the
    /// sandbox. Boots the workspace; it stays awake until the stream has been read.
    public func archive(_ path: WorkspacePath) async throws -> SandboxProcess {
        let stat = try files().stat(path)
        guard stat.type == .directory else { throw AgentBoxError(.invalidArgument, "'\(path)' is not a directory") }
        let activity = try await beginActivity()
        let sandbox: any Sandbox
        do {
            sandbox = try runningSandbox()
        } catch {
            endActivity(activity)
            throw error
        }
        let spec = SandboxProcessSpec(
            arguments: ["tar", "-c", "-f", "-", "."], environment: sandbox.baseEnvironment, workingDirectory: path.description)
        let process: SandboxProcess
        do {
            process = try await sandbox.spawn(spec)
        } catch {
            endActivity(activity)
            throw AgentBoxError(.internalError, "cannot start tar: \(error)")
        }
        // Owned with the sandbox: a stop ends the tar with it, and waits for this release.
        sandboxTasks.start { [weak self] task in
            _ = await process.exitStatus()
            await self?.endActivity(activity)
            await self?.sandboxTaskEnded(task)
        }
        return process
    }
}
