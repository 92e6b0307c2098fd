import AgentBoxAPI
import AgentBoxSandbox
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Subprocess
import SystemPackage

/// Installs agents' binaries into the data directory's `agents/` (mounted read-only into every workspace).
///
/// Sources, tried in order, each named in the result: a binary already on the server's `PATH`; npm (when `npm` is
/// installed and its registry answers); a Python wheel from PyPI that bundles the CLI (Claude Code ships inside
/// `claude-agent-sdk`). Installing is idempotent: an installed agent is left as it is.
public struct AgentInstaller: Sendable {
    public let configuration: AgentBoxConfiguration
    let logger: Logger

    /// Where the PATH step looks (the server's `PATH` unless given).
    let searchPath: String

    public init(configuration: AgentBoxConfiguration, logger: Logger, searchPath: String? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.searchPath = searchPath ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    }

    /// The agents this server knows, and whether each can run now.
    public func list() -> [AgentInfo] {
        configuration.agents.map { definition in
            let installed: Bool
            var version: String?
            if let required = definition.requires {
                let path = configuration.agentsDirectory.appendingPathComponent(required).path
                installed = FileManager.default.isExecutableFile(atPath: path)
                version = try? String(contentsOf: URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("version"), encoding: .utf8)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            } else if let tool = definition.tool {
                installed = configuration.sandbox?.toolPath(tool) != nil
            } else {
                installed = true  // a command agent: it is whatever the workspace's PATH holds
            }
            return AgentInfo(
                id: definition.id, name: definition.name, installed: installed, version: installed ? version : nil, protocol: "acp",
                capabilities: AgentInfo.Capabilities(loadSession: definition.id != "mock-noload", permissions: true, fileSystem: definition.id == "mock" || definition.tool == nil, terminal: definition.id == "mock" || definition.tool == nil))
        }
    }

    /// Installs agent `id` (nothing to do when it is installed or needs no binary); `progress` hears each step.
    public func install(_ id: String, progress: @Sendable (String) -> Void = { _ in }) async throws -> AgentInstallResult {
        guard let definition = configuration.agents.first(where: { $0.id == id }) else {
            throw AgentBoxError(.notFound, "unknown agent '\(id)' (known: \(configuration.agents.map(\.id).joined(separator: ", ")))")
        }
        guard let required = definition.requires else {
            progress("\(id) needs no installation")
            return AgentInstallResult(id: id, installed: true, source: "built-in", version: nil, log: ["\(id) needs no installation"])
        }
        let target = configuration.agentsDirectory.appendingPathComponent(required)
        var log: [String] = []
        func say(_ line: String) {
            log.append(line)
            progress(line)
            logger.info("agent install", metadata: ["agent": "\(id)", "step": "\(line)"])
        }
        if FileManager.default.isExecutableFile(atPath: target.path) {
            say("already installed at \(target.path)")
            return AgentInstallResult(id: id, installed: true, source: "installed", version: await Self.version(of: target.path), log: log)
        }
        if let package = Self.virtualEnvironments[id] {
            // A Python agent: a virtual environment on /usr/bin/python3 (what workspaces see) with the package.
            let environment = configuration.agentsDirectory.appendingPathComponent("\(id)/venv")
            say("PyPI: creating a virtual environment for \(package) (on /usr/bin/python3)")
            try? FileManager.default.removeItem(at: environment)
            try FileManager.default.createDirectory(at: environment.deletingLastPathComponent(), withIntermediateDirectories: true)
            let (created, creation) = try await Self.run(["/usr/bin/python3", "-m", "venv", environment.path], timeout: 120)
            guard created == 0 else {
                say("PyPI: no virtual environment (\(creation.split(separator: "\n").last.map(String.init) ?? "exit \(created)"))")
                throw AgentBoxError(.unavailable, "agent '\(id)' could not be installed: \(log.joined(separator: "; "))")
            }
            let (installed, output) = try await Self.run([environment.appendingPathComponent("bin/pip").path, "install", "-q", package], timeout: 900)
            guard installed == 0, FileManager.default.isExecutableFile(atPath: target.path) else {
                say("PyPI: pip install \(package) failed (\(output.split(separator: "\n").last.map(String.init) ?? "exit \(installed)"))")
                try? FileManager.default.removeItem(at: environment)
                throw AgentBoxError(.unavailable, "agent '\(id)' could not be installed: \(log.joined(separator: "; "))")
            }
            say("installed \(id) from pypi:\(package) at \(environment.path)")
            return AgentInstallResult(id: id, installed: true, source: "pypi:\(package)", version: nil, log: log)
        }
        let binary = target.lastPathComponent
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        // 1. The server's PATH.
        if let onPath = Self.findOnPath(binary, in: searchPath) {
            say("PATH: found \(onPath)")
            try place(URL(fileURLWithPath: onPath).resolvingSymlinksInPath(), at: target)
            let version = await finish(id, target, source: "path", say)
            return AgentInstallResult(id: id, installed: true, source: "path", version: version, log: log)
        }
        say("PATH: no \(binary)")
        // 2. npm.
        if id == "claude", Self.findOnPath("npm", in: searchPath) != nil {
            say("npm: trying @anthropic-ai/claude-code")
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-npm-\(UUID())")
            defer { try? FileManager.default.removeItem(at: directory) }
            let (status, output) = try await Self.run(["npm", "install", "--prefix", directory.path, "--no-audit", "--no-fund", "@anthropic-ai/claude-code"], timeout: 300)
            let installed = directory.appendingPathComponent("node_modules/.bin/claude")
            if status == 0, FileManager.default.isExecutableFile(atPath: installed.path) {
                // An npm install needs node inside the workspace; only a self-contained binary is placed.
                say("npm: installed, but the npm package needs node at run time; looking for a self-contained binary instead")
            } else {
                say("npm: unavailable (\(output.split(separator: "\n").last.map(String.init) ?? "exit \(status)"))")
            }
        } else if id == "claude" {
            say("npm: not installed on this host")
        }
        // 3. A Python wheel that bundles the CLI.
        if let wheelSource = Self.wheels[id] {
            say("PyPI: downloading the \(wheelSource.package) wheel (it bundles the \(binary) CLI, ~150–180 MB)")
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-wheel-\(UUID())")
            defer { try? FileManager.default.removeItem(at: directory) }
            let (status, output) = try await Self.run(
                ["python3", "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", directory.path, wheelSource.package], timeout: 900)
            guard status == 0, let wheel = try? FileManager.default.contentsOfDirectory(atPath: directory.path).first(where: { $0.hasSuffix(".whl") }) else {
                say("PyPI: failed (\(output.split(separator: "\n").last.map(String.init) ?? "exit \(status)"))")
                throw AgentBoxError(.unavailable, "agent '\(id)' could not be installed: \(log.joined(separator: "; "))")
            }
            say("PyPI: got \(wheel); extracting \(wheelSource.member)")
            let partial = target.path + ".partial"
            let extract = """
                import shutil, sys, zipfile
                with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[3]) as source, open(sys.argv[2], "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                """
            let (extracted, message) = try await Self.run(
                ["python3", "-c", extract, directory.appendingPathComponent(wheel).path, partial, wheelSource.member], timeout: 300)
            guard extracted == 0 else {
                try? FileManager.default.removeItem(atPath: partial)
                throw AgentBoxError(.unavailable, "agent '\(id)': the wheel holds no \(wheelSource.member): \(message)")
            }
            chmod(partial, 0o755)
            guard rename(partial, target.path) == 0 else { throw AgentBoxError(.internalError, "cannot place \(target.path)") }
            let version = await finish(id, target, source: "pypi:\(wheelSource.package)", say)
            return AgentInstallResult(id: id, installed: true, source: "pypi:\(wheelSource.package)", version: version, log: log)
        }
        // 4. A download URL given to this server (`serve --agent-url ID=URL`): the binary itself.
        if let url = configuration.agentDownloads[id] {
            say("download: \(url.absoluteString)")
            let partial = target.path + ".partial"
            do {
                try await Self.download(url, to: partial) { received in say("download: \(received >> 20) MiB") }
            } catch {
                try? FileManager.default.removeItem(atPath: partial)
                say("download: failed (\(error))")
                throw AgentBoxError(.unavailable, "agent '\(id)' could not be installed: \(log.joined(separator: "; "))")
            }
            chmod(partial, 0o755)
            guard rename(partial, target.path) == 0 else { throw AgentBoxError(.internalError, "cannot place \(target.path)") }
            let version = await finish(id, target, source: "url", say)
            return AgentInstallResult(id: id, installed: true, source: "url", version: version, log: log)
        } else {
            say("download: no URL configured (serve --agent-url \(id)=URL)")
        }
        throw AgentBoxError(.unavailable, "agent '\(id)' could not be installed: \(log.joined(separator: "; "))")
    }

    /// Streams `url` into the file at `path` (bounded memory), reporting progress every 16 MiB.
    static func download(_ url: URL, to path: String, progress: (Int64) -> Void) async throws {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .minutes(30))
        guard response.status == .ok else { throw AgentBoxError(.badGateway, "\(url.absoluteString) answered \(response.status.code)") }
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw AgentBoxError(.internalError, "cannot create \(path)") }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var received: Int64 = 0
        var reported: Int64 = 0
        for try await chunk in response.body {
            try handle.write(contentsOf: Data(chunk.readableBytesView))
            received += Int64(chunk.readableBytes)
            if received - reported >= 16 << 20 {
                reported = received
                progress(received)
            }
        }
        try handle.synchronize()
    }

    /// Agents that are Python packages on PyPI, installed into a virtual environment of their own.
    static let virtualEnvironments: [String: String] = ["amp": "acp-amp"]

    /// The PyPI wheels that bundle an agent's self-contained CLI, and where it is inside.
    static let wheels: [String: (package: String, member: String)] = [
        "claude": ("claude-agent-sdk", "claude_agent_sdk/_bundled/claude"),
        "codex": ("openai-codex-cli-bin", "codex_cli_bin/bin/codex"),
    ]

    private func place(_ source: URL, at target: URL) throws {
        let partial = target.path + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        try FileManager.default.copyItem(atPath: source.path, toPath: partial)
        chmod(partial, 0o755)
        guard rename(partial, target.path) == 0 else { throw AgentBoxError(.internalError, "cannot place \(target.path)") }
    }

    /// Records the installed version; returns it.
    private func finish(_ id: String, _ target: URL, source: String, _ say: (String) -> Void) async -> String? {
        let version = await Self.version(of: target.path)
        if let version {
            try? version.write(to: target.deletingLastPathComponent().appendingPathComponent("version"), atomically: true, encoding: .utf8)
        }
        say("installed \(id) \(version ?? "") from \(source) at \(target.path)")
        return version
    }

    /// The version an agent's `--version` prints (`2.1.332 (Claude Code)`, `codex-cli 0.163.0`): its first word
    /// that starts with a digit.
    static func version(of path: String) async -> String? {
        guard let result = try? await Subprocess.run(.path(FilePath(path)), arguments: ["--version"], output: .string(limit: 64 << 10), error: .discarded)
        else { return nil }
        return result.standardOutput.split(whereSeparator: \.isWhitespace).first { $0.first?.isNumber == true }.map(String.init)
    }

    static func findOnPath(_ name: String, in searchPath: String) -> String? {
        for directory in searchPath.split(separator: ":") {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Runs a command on the host for at most `timeout` seconds; its exit status and the end of its output.
    static func run(_ arguments: [String], timeout: Int) async throws -> (Int32, String) {
        let result = try await Subprocess.run(
            .name("timeout"), arguments: Arguments([String(timeout)] + arguments), output: .string(limit: 4 << 20), error: .string(limit: 4 << 20))
        let status: Int32 =
            switch result.terminationStatus {
            case .exited(let code): code
            case .signaled(let signal): 128 + signal
            }
        return (status, String((result.standardOutput + result.standardError).suffix(4096)))
    }
}
