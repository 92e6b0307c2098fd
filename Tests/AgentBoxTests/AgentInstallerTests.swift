import AgentBox
import AgentBoxAPI
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
