import AgentBoxAPI
import AgentBoxClient
import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import Testing

/// Agent installs against a package index on loopback (Tests/Support/fake_pypi.py) and the real binary: a pinned
/// version, a download's progress in bytes, two installs at once sharing one download, a replaced version, a wheel
/// whose SHA-256 is wrong, a version the index lacks, a conflicting version under way; then the CLI and the details.
@Suite("Agent installs from a package index", .timeLimit(.minutes(4)))
struct AgentInstallEndToEndTests {
    @Test func pinnedCoalescedCheckedAndShown() async throws {
        try await withPythonHelper("fake_pypi.py") { port, _ in
            try await withTemporaryDirectory { data in
                let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--package-index", "http://127.0.0.1:\(port)"])
                let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
                func index(_ path: String) async throws -> Data {
                    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(10))
                    return Data(String(buffer: try await response.body.collect(upTo: 1 << 20)).utf8)
                }
                func downloads() async throws -> [String: Int] {
                    try JSONDecoder().decode([String: Int].self, from: try await index("/count"))
                }
                let before = try await client.agent("codex")
                #expect(!before.installed && !before.installing && before.installSources.contains("pypi:openai-codex-cli-bin"))
                #expect(before.credentials.needed)

                // Two installs at once: one download, both see the bytes come in and the same result. The index holds the
                // download after its first chunk until the second install has joined, however loaded the machine is.
                let steps = StepLog(), secondSteps = StepLog()
                _ = try await index("/hold")
                async let first = client.installAgent("codex", version: "1.0.0") { steps.add($0) }
                let one: AgentInstallResult, second: AgentInstallResult
                do {
                    let began = ContinuousClock.now
                    while try await !client.agent("codex").installing, ContinuousClock.now - began < .seconds(20) {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    #expect(try await client.agent("codex").installing)
                    async let joined = client.installAgent("codex", version: "1.0.0") { secondSteps.add($0) }
                    // The follower has joined once it has heard the install's steps so far.
                    while secondSteps.all.isEmpty, ContinuousClock.now - began < .seconds(20) {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    _ = try await index("/release")
                    (one, second) = try await (first, joined)
                } catch {
                    _ = try? await index("/release")
                    throw error
                }
                #expect(one == second && one.source == "pypi:openai-codex-cli-bin" && one.version == "1.0.0" && one.packageVersion == "1.0.0")
                #expect(try await downloads().values.reduce(0, +) == 1, "one download for two installs")
                let bytes = steps.all.compactMap(\.bytes)
                #expect(bytes.count >= 3 && bytes == bytes.sorted(), "\(bytes)")
                // The follower heard the same install: its steps so far, then the rest, in order.
                let followed = secondSteps.all.compactMap(\.bytes)
                #expect(followed == followed.sorted() && followed.last == bytes.last, "\(followed)")
                #expect(steps.all.contains { $0.phase == "download" && $0.bytes != nil && $0.bytes == $0.totalBytes }, "the last step reaches the total")
                #expect(Set(steps.all.map(\.phase)).isSuperset(of: ["path", "pypi", "download", "extract", "done"]), "\(Set(steps.all.map(\.phase)))")
                #expect(one.path?.hasSuffix("/agents/codex/codex") == true)
                let installed = try await client.agent("codex")
                #expect(installed.installed && installed.version == "1.0.0" && installed.packageVersion == "1.0.0" && !installed.installing)
                // Installed: asked again, nothing is downloaded.
                #expect(try await client.installAgent("codex", version: "1.0.0") { _ in }.source == "installed")
                #expect(try await client.installAgent("codex", version: "1.0.0", reinstall: true) { _ in }.source == "pypi:openai-codex-cli-bin")
                #expect(try await downloads().values.reduce(0, +) == 2, "a reinstall downloads again")

                // A conflicting version while one is under way is 409; the newest then replaces 1.0.0. The index holds
                // the download after its first chunk, so the install stays under way however loaded the machine is.
                _ = try await index("/hold")
                async let newest = client.installAgent("codex", version: "2.0.0") { _ in }
                do {
                    let started = ContinuousClock.now
                    while try await !client.agent("codex").installing, ContinuousClock.now - started < .seconds(20) {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    let conflict = await #expect(throws: AgentBoxClientError.self) { _ = try await client.installAgent("codex", version: "1.0.0") { _ in } }
                    #expect(conflict?.status == 409)
                } catch {
                    _ = try? await index("/release")
                    throw error
                }
                _ = try await index("/release")
                #expect(try await newest.version == "2.0.0")
                #expect(try await client.agents().items.first { $0.id == "codex" }?.version == "2.0.0")

                // A wheel that does not match its SHA-256, and a version the index lacks: refused, 2.0.0 stays.
                let forged = await #expect(throws: AgentBoxClientError.self) { _ = try await client.installAgent("codex", version: "6.6.6") { _ in } }
                #expect(forged?.status == 503 && forged?.problem.detail.contains("SHA-256") == true, "\(String(describing: forged))")
                let missing = await #expect(throws: AgentBoxClientError.self) { _ = try await client.installAgent("codex", version: "9.9.9") { _ in } }
                #expect(missing?.status == 503 && missing?.problem.detail.contains("not on the index") == true, "\(String(describing: missing))")
                #expect(try await client.agent("codex").packageVersion == "2.0.0")
                let bad = await #expect(throws: AgentBoxClientError.self) { _ = try await client.installAgent("codex", version: "1.0; rm -rf /") { _ in } }
                #expect(bad?.status == 400)

                // The CLI, not on a terminal: the download at each tenth, then the result; and the details.
                let environment = ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!]
                let cli = try await AgentBoxBinary.run(["agents", "install", "codex", "--package-version", "1.0.0"], environment: environment)
                #expect(cli.status == 0, "\(cli.stderr)")
                #expect(cli.stdout.contains("downloaded") && cli.stdout.contains("100%") && cli.stdout.contains("codex: installed from pypi:openai-codex-cli-bin, version 1.0.0"), "\(cli.stdout)")
                let info = try await AgentBoxBinary.run(["agents", "info", "codex"], environment: environment)
                #expect(info.stdout.contains("package version") && info.stdout.contains("1.0.0"), "\(info.stdout)")
                let mock = try await client.agent("mock")
                #expect(mock.installed && mock.installSources.isEmpty && !mock.credentials.needed)
                await #expect(throws: AgentBoxClientError.self) { _ = try await client.agent("nobody") }
                await server.stop()
            }
        }
    }
}

/// Install steps heard from two installs at once.
final class StepLog: Sendable {
    private let steps = Mutex<[AgentInstallProgress]>([])
    func add(_ step: AgentInstallProgress) { steps.withLock { $0.append(step) } }
    var all: [AgentInstallProgress] { steps.withLock { $0 } }
}
