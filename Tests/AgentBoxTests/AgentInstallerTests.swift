import AgentBox
import AgentBoxAPI
import ChildProcessSupport
import Foundation
import Logging
import Testing

@Suite("Installing agents")
struct AgentInstallerTests {
    @Test func aBinaryOnThePathIsInstalledOnceAndListed() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-install-\(UUID())")
        defer { try? FileManager.default.removeItem(at: base) }
        let bin = base.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let fake = bin.appendingPathComponent("codex")
        try "#!/bin/sh\necho 'codex-cli 9.8.7'\n".write(to: fake, atomically: true, encoding: .utf8)
        chmod(fake.path, 0o755)
        let configuration = AgentBoxConfiguration(dataDirectory: base.appendingPathComponent("data"))
        let installer = AgentInstaller(configuration: configuration, logger: Logger(label: "test"), searchPath: bin.path)
        #expect(installer.list().first { $0.id == "codex" }?.installed == false)

        let steps = StepLog()
        let result = try await installer.install("codex") { steps.add($0) }
        #expect(result.source == "path" && result.version == "9.8.7", "\(result)")
        #expect(steps.lines.first?.hasPrefix("PATH: found") == true)
        let placed = configuration.agentsDirectory.appendingPathComponent("codex/codex").path
        #expect(FileManager.default.isExecutableFile(atPath: placed))
        #expect(installer.list().first { $0.id == "codex" } .map { ($0.installed, $0.version) } ?? (false, nil) == (true, "9.8.7"))
        #expect(try await installer.install("codex").source == "installed", "installing is idempotent")

        #expect(try await installer.install("mock").source == "built-in")
        await #expect(throws: AgentBoxError.self) { try await installer.install("nobody") }
    }
}

final class StepLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    func add(_ line: String) { lock.withLock { stored.append(line) } }
    var lines: [String] { lock.withLock { stored } }
}

@Suite("Installing agents from a download URL")
struct AgentDownloadTests {
    @Test func theLastSourceIsAConfiguredURL() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-download-\(UUID())")
        defer { try? FileManager.default.removeItem(at: base) }
        let served = base.appendingPathComponent("served")
        try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
        try "#!/bin/sh\necho 'tool 1.2.3'\n".write(to: served.appendingPathComponent("tool"), atomically: true, encoding: .utf8)
        // A plain HTTP server on a free port.
        let server = ChildProcess()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", served.path]
        let output = Pipe()
        server.standardOutput = output
        server.standardError = FileHandle.nullDevice
        try server.run()
        // Killed when the test ends; its waiting thread reaps it.
        defer { server.signal(SIGKILL) }
        let line = await Task.detached { () -> String in
            var text = ""
            while !text.contains("\n") {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return text
        }.value
        let port = try #require(line.split(separator: " ").compactMap { Int($0) }.first, "\(line)")

        var configuration = AgentBoxConfiguration(dataDirectory: base.appendingPathComponent("data"))
        configuration.agents.append(AgentDefinition(id: "tool", name: "A tool", command: ["{agents}/tool/tool"], requires: "tool/tool"))
        let installer = AgentInstaller(configuration: configuration, logger: .init(label: "test"), searchPath: base.appendingPathComponent("empty").path)
        await #expect(throws: AgentBoxError.self) { try await installer.install("tool") }
        configuration.agentDownloads["tool"] = URL(string: "http://127.0.0.1:\(port)/tool")!
        let result = try await AgentInstaller(configuration: configuration, logger: .init(label: "test"), searchPath: base.appendingPathComponent("empty").path)
            .install("tool")
        #expect(result.source == "url" && result.version == "1.2.3", "\(result)")
        #expect(result.log.first == "PATH: no tool" && result.log.contains { $0.hasPrefix("download: http://127.0.0.1") })
        configuration.agentDownloads["tool"] = URL(string: "http://127.0.0.1:\(port)/missing")!
        try FileManager.default.removeItem(at: configuration.agentsDirectory.appendingPathComponent("tool/tool"))
        await #expect(throws: AgentBoxError.self) {
            try await AgentInstaller(configuration: configuration, logger: .init(label: "test"), searchPath: "/nonexistent").install("tool")
        }
    }
}
