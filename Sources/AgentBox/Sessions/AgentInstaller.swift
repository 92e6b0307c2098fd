import AgentBoxAPI
import AgentBoxSandbox
import AsyncHTTPClient
import Crypto
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
            var info = AgentInfo(
                id: definition.id, name: definition.name, installed: installed, version: installed ? version : nil, protocol: "acp",
                capabilities: AgentInfo.Capabilities(loadSession: definition.id != "mock-noload", permissions: true, fileSystem: definition.id == "mock" || definition.tool == nil, terminal: definition.id == "mock" || definition.tool == nil))
            info.limitation = definition.limitation
            if !installed, let required = definition.requires {
                // A source this server can use: a package index (wheel or virtual environment), a URL, or the PATH.
                let binary = URL(fileURLWithPath: required).lastPathComponent
                let canFetch = Self.wheels[definition.id] != nil || Self.virtualEnvironments[definition.id] != nil
                    || configuration.agentDownloads[definition.id] != nil || Self.findOnPath(binary, in: searchPath) != nil
                info.installable = canFetch
                if !canFetch {
                    info.notInstallableReason =
                        "AgentBox fetches it from no registry it reaches: it is published on \(definition.publishedAt ?? "its own channels"); "
                        + "put `\(binary)` on the server's PATH or pass serve --agent-url \(definition.id)=URL"
                }
            }
            return info
        }
    }

    /// Where an install of `definition` looks, in order (see ``install(_:version:progress:)``).
    func sources(of definition: AgentDefinition) -> [String] {
        guard definition.requires != nil else { return [] }
        if let package = Self.virtualEnvironments[definition.id] { return ["pypi:\(package)"] }
        var sources = ["path"]
        if definition.id == "claude" { sources.append("npm") }
        if let wheel = Self.wheels[definition.id] { sources.append("pypi:\(wheel.package)") }
        if configuration.agentDownloads[definition.id] != nil { sources.append("url") }
        return sources
    }

    /// The package version agent `id` was installed from, when it was from a package.
    func packageVersion(of definition: AgentDefinition) -> String? {
        guard let required = definition.requires else { return nil }
        let file = configuration.agentsDirectory.appendingPathComponent(required).deletingLastPathComponent().appendingPathComponent("package-version")
        return (try? String(contentsOf: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Installs agent `id` (nothing to do when it is installed or needs no binary); `progress` hears each step.
    public func install(_ id: String, progress: @Sendable (String) -> Void = { _ in }) async throws -> AgentInstallResult {
        try await install(id, version: nil, reinstall: false) { step in progress(step.line) }
    }

    /// Installs agent `id`, from package version `version` when given (an agent installed from another version is
    /// replaced; the PATH and URL sources, which name no version, are skipped). `progress` hears each step, and the
    /// bytes of a download as they come.
    public func install(
        _ id: String, version: String?, reinstall: Bool = false, progress: @Sendable (AgentInstallProgress) -> Void
    ) async throws -> AgentInstallResult {
        guard let definition = configuration.agents.first(where: { $0.id == id }) else {
            throw AgentBoxError(.notFound, "unknown agent '\(id)' (known: \(configuration.agents.map(\.id).joined(separator: ", ")))")
        }
        if let version, !Self.isVersion(version) {
            throw AgentBoxError(.invalidArgument, "version: '\(version.prefix(80))' is not a package version (digits, letters, . + - _ ; at most 64)")
        }
        guard let required = definition.requires else {
            progress(AgentInstallProgress(phase: "check", line: "\(id) needs no installation"))
            return AgentInstallResult(id: id, installed: true, source: "built-in", version: nil, log: ["\(id) needs no installation"])
        }
        let target = configuration.agentsDirectory.appendingPathComponent(required)
        var log: [String] = []
        func say(_ line: String) {
            log.append(line)
            let phase =
                line.hasPrefix("PATH:") ? "path" : line.hasPrefix("npm:") ? "npm" : line.hasPrefix("PyPI: got") ? "extract"
                : line.hasPrefix("PyPI:") ? "pypi" : line.hasPrefix("download:") ? "url" : line.hasPrefix("installed") ? "done" : "check"
            progress(AgentInstallProgress(phase: phase, line: line))
            logger.info("agent install", metadata: ["agent": "\(id)", "step": "\(line)"])
        }
        if FileManager.default.isExecutableFile(atPath: target.path) {
            let installedVersion = packageVersion(of: definition)
            if !reinstall, version == nil || installedVersion == version {
                say("already installed at \(target.path)")
                return AgentInstallResult(
                    id: id, installed: true, source: "installed", version: await Self.version(of: target.path), packageVersion: installedVersion,
                    path: target.path, log: log)
            }
            say(reinstall ? "reinstalling" : "installed from package version \(installedVersion ?? "unknown"); replacing it with \(version!)")
        }
        let packageVersionFile = target.deletingLastPathComponent().appendingPathComponent("package-version")
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
            let requirement = version.map { "\(package)==\($0)" } ?? package
            let (installed, output) = try await Self.run([environment.appendingPathComponent("bin/pip").path, "install", "-q", requirement], timeout: 900)
            guard installed == 0, FileManager.default.isExecutableFile(atPath: target.path) else {
                say("PyPI: pip install \(requirement) failed (\(output.split(separator: "\n").last.map(String.init) ?? "exit \(installed)"))")
                try? FileManager.default.removeItem(at: environment)
                throw AgentBoxError(.unavailable, "agent '\(id)' could not be installed: \(log.joined(separator: "; "))")
            }
            let (_, shown) = try await Self.run([environment.appendingPathComponent("bin/pip").path, "show", package], timeout: 60)
            let installedVersion = shown.split(separator: "\n").first { $0.hasPrefix("Version: ") }.map { String($0.dropFirst("Version: ".count)) }
            if let installedVersion { try? installedVersion.write(to: packageVersionFile, atomically: true, encoding: .utf8) }
            say("installed \(id) \(installedVersion ?? "") from pypi:\(package) at \(environment.path)")
            return AgentInstallResult(id: id, installed: true, source: "pypi:\(package)", version: nil, packageVersion: installedVersion, path: target.path, log: log)
        }
        let binary = target.lastPathComponent
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        // 1. The server's PATH (which names no version).
        if version != nil {
            say("PATH: skipped (a package version is asked for)")
        } else if let onPath = Self.findOnPath(binary, in: searchPath) {
            say("PATH: found \(onPath)")
            try place(URL(fileURLWithPath: onPath).resolvingSymlinksInPath(), at: target)
            try? FileManager.default.removeItem(at: packageVersionFile)
            let version = await finish(id, target, source: "path", say)
            return AgentInstallResult(id: id, installed: true, source: "path", version: version, path: target.path, log: log)
        } else {
            say("PATH: no \(binary)")
        }
        // 2. npm.
        if id == "claude", version == nil, Self.findOnPath("npm", in: searchPath) != nil {
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
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-wheel-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let wheel: String
            do {
                // The index's JSON API: the wheel for this machine, streamed with its progress and checked by its SHA-256.
                wheel = try await downloadWheel(wheelSource.package, version: version, into: directory, say: say, progress: progress)
            } catch let error as AgentBoxError where error.code == .conflict {
                say("PyPI: \(error.message)")
                throw AgentBoxError(.unavailable, "agent '\(id)' could not be installed: \(log.joined(separator: "; "))")
            } catch {
                // pip, which also knows the machine's own configuration (mirrors, find-links).
                say("PyPI: the JSON API did not serve it (\(error)); trying pip download")
                let requirement = version.map { "\(wheelSource.package)==\($0)" } ?? wheelSource.package
                let (status, output) = try await Self.run(
                    ["python3", "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", directory.path, requirement], timeout: 900)
                guard status == 0, let found = try? FileManager.default.contentsOfDirectory(atPath: directory.path).first(where: { $0.hasSuffix(".whl") }) else {
                    say("PyPI: failed (\(output.split(separator: "\n").last.map(String.init) ?? "exit \(status)"))")
                    throw AgentBoxError(.unavailable, "agent '\(id)' could not be installed: \(log.joined(separator: "; "))")
                }
                wheel = found
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
            let fromWheel = Self.wheelVersion(wheel)
            if let fromWheel { try? fromWheel.write(to: packageVersionFile, atomically: true, encoding: .utf8) }
            let agentVersion = await finish(id, target, source: "pypi:\(wheelSource.package)", say)
            return AgentInstallResult(
                id: id, installed: true, source: "pypi:\(wheelSource.package)", version: agentVersion, packageVersion: fromWheel, path: target.path,
                log: log)
        }
        // 4. A download URL given to this server (`serve --agent-url ID=URL`): the binary itself.
        if let url = configuration.agentDownloads[id], version != nil {
            say("download: skipped (\(url.absoluteString) names no version)")
        } else if let url = configuration.agentDownloads[id] {
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
            try? FileManager.default.removeItem(at: packageVersionFile)
            let version = await finish(id, target, source: "url", say)
            return AgentInstallResult(id: id, installed: true, source: "url", version: version, path: target.path, log: log)
        } else {
            say("download: no URL configured (serve --agent-url \(id)=URL)")
        }
        throw AgentBoxError(.unavailable, "agent '\(id)' could not be installed: \(log.joined(separator: "; "))")
    }

    /// Streams `url` into the file at `path` (bounded memory), reporting progress every `every` bytes; returns the
    /// file's SHA-256, hex.
    @discardableResult
    static func download(_ url: URL, to path: String, every: Int64 = 16 << 20, progress: (Int64) -> Void) async throws -> String {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .minutes(30))
        guard response.status == .ok else { throw AgentBoxError(.badGateway, "\(url.absoluteString) answered \(response.status.code)") }
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw AgentBoxError(.internalError, "cannot create \(path)") }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var received: Int64 = 0
        var reported: Int64 = 0
        var hash = SHA256()
        for try await chunk in response.body {
            let bytes = Data(chunk.readableBytesView)
            hash.update(data: bytes)
            try handle.write(contentsOf: bytes)
            received += Int64(chunk.readableBytes)
            if received - reported >= every {
                reported = received
                progress(received)
            }
        }
        if received != reported { progress(received) }
        try handle.synchronize()
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// Downloads package `package`'s wheel for this machine (`version`, else the newest) from the index's JSON API
    /// (`{index}/pypi/{package}[/{version}]/json`) into `directory`, reporting the bytes as they come, and checks its
    /// SHA-256; returns its file name. `conflict` when the index has no such version or no wheel for this machine.
    func downloadWheel(
        _ package: String, version: String?, into directory: URL, say: (String) -> Void, progress: @Sendable (AgentInstallProgress) -> Void
    ) async throws -> String {
        let index = configuration.packageIndex.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        let url = index + "/pypi/\(package)" + (version.map { "/\($0)" } ?? "") + "/json"
        say("PyPI: asking \(url)")
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(60))
        if response.status == .notFound { throw AgentBoxError(.conflict, "\(package) \(version ?? "") is not on the index") }
        guard response.status == .ok else { throw AgentBoxError(.badGateway, "\(url) answered \(response.status.code)") }
        let document = try JSONValue.parse(Array(try await response.body.collect(upTo: 16 << 20).readableBytesView))
        guard case .array(let files)? = document["urls"] else { throw AgentBoxError(.badGateway, "\(url) has no urls") }
        let wheels = files.compactMap { file -> (name: String, url: String, size: Int64?, sha256: String?)? in
            guard let name = file["filename"]?.stringValue, name.hasSuffix(".whl"), let link = file["url"]?.stringValue else { return nil }
            var size: Int64?
            if case .number(let number)? = file["size"] { size = Int64(number) }
            return (name, link, size, file["digests"]?["sha256"]?.stringValue)
        }
        guard let wheel = wheels.first(where: { Self.wheelFits($0.name) }) else {
            throw AgentBoxError(.conflict, "\(package) \(document["info"]?["version"]?.stringValue ?? "") has no wheel for this machine (\(Self.machine))")
        }
        let total = wheel.size
        say("PyPI: downloading \(wheel.name)\(total.map { " (\($0 >> 20) MiB)" } ?? "")")
        let path = directory.appendingPathComponent(wheel.name).path
        let sha256 = try await Self.download(URL(string: wheel.url)!, to: path, every: 1 << 20) { received in
            progress(AgentInstallProgress(phase: "download", line: "PyPI: \(received >> 20) MiB", bytes: received, totalBytes: total))
        }
        if let expected = wheel.sha256, expected.lowercased() != sha256 {
            try? FileManager.default.removeItem(atPath: path)
            throw AgentBoxError(.conflict, "\(wheel.name) does not match its SHA-256 on the index (got \(sha256.prefix(16))…): refused")
        }
        return wheel.name
    }

    /// The machine's architecture in wheel tags.
    static var machine: String {
        #if arch(arm64)
            "aarch64"
        #else
            "x86_64"
        #endif
    }

    /// Whether wheel file `name` runs here: a manylinux (glibc) wheel of this architecture, or a pure one.
    static func wheelFits(_ name: String) -> Bool {
        let stem = name.dropLast(4)  // .whl
        let tags = stem.split(separator: "-")
        guard tags.count >= 5, let platform = tags.last else { return false }
        return platform.split(separator: ".").contains { tag in
            tag == "any" || (tag.hasPrefix("manylinux") && tag.hasSuffix(machine)) || (tag.hasPrefix("linux") && tag.hasSuffix(machine))
        }
    }

    /// The version in wheel file `name` (`claude_agent_sdk-0.1.40-py3-none-manylinux_2_17_x86_64.whl` → `0.1.40`).
    static func wheelVersion(_ name: String) -> String? {
        let parts = name.split(separator: "-")
        return parts.count >= 5 ? String(parts[1]) : nil
    }

    /// Whether `text` could be a package version (PEP 440's characters), short.
    static func isVersion(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.first!.isNumber
            && text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || ".+-_!".unicodeScalars.contains($0)) }
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
        // A binary just written may not start at once: a process another thread of the server forks at that moment
        // holds the file open for writing until its exec (ETXTBSY). A few short retries.
        for attempt in 0..<4 {
            if attempt > 0 { try? await Task.sleep(for: .milliseconds(50 << attempt)) }
            guard let result = try? await Subprocess.run(.path(FilePath(path)), arguments: ["--version"], output: .string(limit: 64 << 10), error: .discarded)
            else { continue }
            return result.standardOutput.split(whereSeparator: \.isWhitespace).first { $0.first?.isNumber == true }.map(String.init)
        }
        return nil
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
