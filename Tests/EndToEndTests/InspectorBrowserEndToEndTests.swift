import AgentBoxAPI
import Foundation
import Testing

/// The Python interpreter of the browser test's environment (`scripts/setup-browser.sh`, which `scripts/test.sh` runs):
/// Playwright, driving Debian's Chromium.
let browserPython: String? = {
    let environment = ProcessInfo.processInfo.environment["AGENTBOX_BROWSER"].flatMap { $0.isEmpty ? nil : $0 }
    let directory = environment
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/browser").path
    let python = directory + "/venv/bin/python"
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    return FileManager.default.isExecutableFile(atPath: python) && chromium ? python : nil
}()

/// The Inspector in a real browser, against the real server: `Tests/Inspector/inspector_test.py` logs in, creates a
/// workspace, writes and reads a file, runs a command in the terminal, prompts the mock agent and answers its
/// permission request, and makes and revokes a preview, asserting on what the page shows (and on no script error).
@Suite(
    "The Inspector in Chromium", .enabled(if: canSandbox, "needs bubblewrap and root"),
    .enabled(if: browserPython != nil, "Chromium or Playwright is not installed: run scripts/setup-browser.sh (it needs Debian's packages and PyPI)"),
    .timeLimit(.minutes(6)))
struct InspectorBrowserEndToEndTests {
    @Test func aPersonUsesTheInspector() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Inspector/inspector_test.py").path
            // Screenshots go beside the data (kept on failure, for a look); scripts/ui-screenshots.sh writes docs/ui.
            let shots = data.appendingPathComponent("screenshots").path
            let run = try await runProgram(browserPython!, [script, "--url", server.endpoint.absoluteString, "--token", server.token!, "--screenshots", shots])
            #expect(run.status == 0, "the browser test failed:\n\(run.stdout.suffix(6000))\n\(run.stderr.suffix(6000))")
            #expect(run.stdout.contains("PASS"), "\(run.stdout.suffix(2000))")
            await server.stop()
        }
    }
}
