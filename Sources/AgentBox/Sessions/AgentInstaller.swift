import AgentBoxAPI
import Foundation
import Logging

/// Installs agents' binaries into the data directory's `agents/` (mounted read-only into every workspace).
///
/// Sources, tried in order, each named in the result: a binary already on the server's `PATH`; npm (when `npm` is
/// installed and its registry answers); a Python wheel from PyPI that bundles the CLI (Claude Code ships inside
/// `claude-agent-sdk`). Installing is idempotent: an installed agent is left as it is.
public struct AgentInstaller: Sendable {
    public let configuration: AgentBoxConfiguration
    let logger: Logger

    public init(configuration: AgentBoxConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
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
            return AgentInstallResult(id: id, installed: true, source: "installed", version: Self.version(of: target.path), log: log)
        }
        let binary = target.lastPathComponent
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        // 1. The server's PATH.
        if let onPath = Self.findOnPath(binary) {
            say("PATH: found \(onPath)")
            try place(URL(fileURLWithPath: onPath).resolvingSymlinksInPath(), at: target)
            return finish(id, target, source: "path", log: &log, say)
        }
        say("PATH: no \(binary)")
        // 2. npm.
        if id == "claude", Self.findOnPath("npm") != nil {
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
        if id == "claude" {
            say("PyPI: downloading the claude-agent-sdk wheel (it bundles the claude CLI, ~180 MB)")
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-wheel-\(UUID())")
            defer { try? FileManager.default.removeItem(at: directory) }
            let (status, output) = try await Self.run(
                ["python3", "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", directory.path, "claude-agent-sdk"], timeout: 900)
            guard status == 0, let wheel = try? FileManager.default.contentsOfDirectory(atPath: directory.path).first(where: { $0.hasSuffix(".whl") }) else {
                say("PyPI: failed (\(output.split(separator: "\n").last.map(String.init) ?? "exit \(status)"))")
                throw AgentBoxError(.unavailable, "agent '\(id)' could not be installed: \(log.joined(separator: "; "))")
            }
            say("PyPI: got \(wheel); extracting claude_agent_sdk/_bundled/claude")
            let partial = target.path + ".partial"
            let extract = """
                import shutil, sys, zipfile
                with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("claude_agent_sdk/_bundled/claude") as source, open(sys.argv[2], "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                """
            let (extracted, message) = try await Self.run(["python3", "-c", extract, directory.appendingPathComponent(wheel).path, partial], timeout: 300)
            guard extracted == 0 else {
                try? FileManager.default.removeItem(atPath: partial)
                throw AgentBoxError(.unavailable, "agent '\(id)': the wheel holds no bundled CLI: \(message)")
            }
            chmod(partial, 0o755)
            guard rename(partial, target.path) == 0 else { throw AgentBoxError(.internalError, "cannot place \(target.path)") }
            return finish(id, target, source: "pypi:claude-agent-sdk", log: &log, say)
        }
        throw AgentBoxError(.unavailable, "agent '\(id)' could not be installed: \(log.joined(separator: "; "))")
    }

    private func place(_ source: URL, at target: URL) throws {
        let partial = target.path + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        try FileManager.default.copyItem(atPath: source.path, toPath: partial)
        chmod(partial, 0o755)
        guard rename(partial, target.path) == 0 else { throw AgentBoxError(.internalError, "cannot place \(target.path)") }
    }

    private func finish(_ id: String, _ target: URL, source: String, log: inout [String], _ say: (String) -> Void) -> AgentInstallResult {
        let version = Self.version(of: target.path)
        if let version {
            try? version.write(to: target.deletingLastPathComponent().appendingPathComponent("version"), atomically: true, encoding: .utf8)
        }
        say("installed \(id) \(version ?? "") from \(source) at \(target.path)")
        return AgentInstallResult(id: id, installed: true, source: source, version: version, log: log)
    }

    static func version(of path: String) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--version"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: " ").first.map(String.init)
    }

    static func findOnPath(_ name: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Runs a command on the host, off the concurrency pool; its combined output, at most `timeout` seconds.
    static func run(_ arguments: [String], timeout: Int) async throws -> (Int32, String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = ["timeout", String(timeout)] + arguments
                let output = Pipe()
                process.standardOutput = output
                process.standardError = output
                do { try process.run() } catch {
                    continuation.resume(throwing: error)
                    return
                }
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: (process.terminationStatus, String(decoding: data.suffix(4096), as: UTF8.self)))
            }
        }
    }
}
