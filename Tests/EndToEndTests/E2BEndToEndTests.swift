import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing

/// The E2B environments of `scripts/setup-e2b.sh` (which `scripts/test.sh` runs): one virtual environment per
/// supported SDK version, under `.build/e2b/<name>`.
let e2bEnvironments: URL = {
    let explicit = ProcessInfo.processInfo.environment["AGENTBOX_E2B_SDKS"].flatMap { $0.isEmpty ? nil : $0 }
    return URL(
        fileURLWithPath: explicit
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/e2b").path)
}()

func e2bPython(_ name: String) -> String? {
    let python = e2bEnvironments.appendingPathComponent("\(name)/bin/python").path
    return FileManager.default.isExecutableFile(atPath: python) ? python : nil
}

let e2bInstalled = e2bPython("e2b-2.63.0") != nil && e2bPython("e2b-2.45.1") != nil && e2bPython("code-interpreter-2.11") != nil

let e2bScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Support/e2b_sdk_test.py").path

/// AgentBox driven by E2B's own Python SDKs from PyPI (`e2b` 2.63.0 and 2.45.1, `e2b-code-interpreter` 2.11), unmodified,
/// pointed at the real server by their environment variables: every feature of docs/E2B.md, and the attacks.
@Suite(
    "E2B SDKs", .serialized, .enabled(if: canSandbox, "needs bubblewrap and root"),
    .enabled(if: e2bInstalled, "the E2B SDKs are not installed: run scripts/setup-e2b.sh (it needs PyPI)"),
    .timeLimit(.minutes(5)))
struct E2BEndToEndTests {
    /// e2b 2.45.1 accepts only `e2b_` and hex digits: the server's token is hex here, so one key serves every SDK.
    static let token = "0123456789abcdef0123456789abcdef"

    /// Runs the driver in `environment` with `mode` against a fresh server; returns its checks (name → "ok" or why not).
    func drive(_ environment: String, _ mode: String) async throws -> [String: String] {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, token: Self.token)
            let url = "http://127.0.0.1:\(server.port)"
            let run = try await runProgram(
                e2bPython(environment)!, [e2bScript, mode],
                environment: [
                    "E2B_API_URL": url, "E2B_SANDBOX_URL": url, "E2B_API_KEY": "e2b_\(Self.token)", "E2B_DEBUG": "false",
                    "AGENTBOX_URL": url, "AGENTBOX_TOKEN": Self.token,
                ])
            let line = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                Issue.record("the driver printed no results (exit \(run.status)): \(run.stdout.suffix(2000)) \(run.stderr.suffix(4000))\n\(server.log.suffix(4000))")
                return [:]
            }
            var checks: [String: String] = [:]
            for (name, value) in object where !name.hasSuffix(".seconds") && name != "sdk.version" {
                checks[name] = value as? String ?? "\(value)"
            }
            let failed = checks.filter { $0.value != "ok" }
            if !failed.isEmpty { print("server log:\n\(server.log.suffix(6000))") }
            return checks
        }
    }

    func expectAllPass(_ checks: [String: String], _ expected: [String]) {
        for name in expected {
            #expect(checks[name] == "ok", "\(name): \(checks[name] ?? "did not run")")
        }
        for (name, value) in checks where value != "ok" {
            Issue.record("\(name): \(value)")
        }
    }

    static let coreChecks = [
        "create", "visible_through_v1", "commands.run", "commands.user_and_home", "commands.as_root", "commands.envs", "commands.cwd", "commands.streaming",
        "commands.exit_code", "commands.timeout", "commands.background_list_kill", "commands.stdin", "commands.connect",
        "commands.process_group_kill", "pty", "files.write_read", "files.bytes_and_file_objects", "files.visible_through_v1",
        "files.list_exists_info", "files.make_dir_rename_remove", "files.outside_home", "files.watch", "set_timeout_and_info", "metrics", "list",
        "pause_resume", "timeout_pauses", "timeout_spares_a_sandbox_in_use", "templates_are_images", "kill", "async_sandbox",
    ]

    @Test("e2b 2.63.0: sandboxes, commands, PTYs, files, timeouts, pause and resume")
    func sdk2_63() async throws {
        expectAllPass(try await drive("e2b-2.63.0", "core"), Self.coreChecks)
    }

    @Test("e2b 2.45.1: sandboxes, commands, PTYs, files, timeouts, pause and resume")
    func sdk2_45() async throws {
        expectAllPass(try await drive("e2b-2.45.1", "core"), Self.coreChecks)
    }

    @Test("e2b-code-interpreter 2.11: state between cells, results, errors, plots, contexts, JavaScript")
    func codeInterpreter() async throws {
        expectAllPass(
            try await drive("code-interpreter-2.11", "interpreter"),
            ["ci.create", "ci.state_persists", "ci.stdout_and_callbacks", "ci.error", "ci.matplotlib_png", "ci.contexts", "ci.javascript", "ci.commands_too"])
    }

    @Test("attacks: wrong keys, another sandbox's token, bad Connect bodies, oversized bodies")
    func attacks() async throws {
        expectAllPass(
            try await drive("e2b-2.63.0", "attack"),
            ["attack.wrong_api_key", "attack.setup", "attack.other_sandbox_token", "attack.bad_connect_bodies", "attack.oversized_bodies", "attack.unknown_sandbox"])
    }
}
