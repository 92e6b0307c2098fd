import AgentBoxAPI
import AgentBoxClient
import ChildProcessSupport
import Foundation
import Testing

/// `agentbox shell` driven through tmux, as a person would use it: keys in, the screen read back.
@Suite(
    "agentbox shell through tmux", .enabled(if: canSandbox && FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs bubblewrap, root and tmux"),
    .timeLimit(.minutes(2)))
struct ShellEndToEndTests {
    /// Runs tmux; its output goes through a file, since the tmux server it may start keeps any pipe open.
    @discardableResult
    func tmux(_ arguments: String...) async throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(UUID())")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/tmux")
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: output)
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        _ = await waitForExit(process)
        return (try? String(contentsOf: output, encoding: .utf8)) ?? ""
    }

    /// Waits until the pane shows `text`; returns the pane.
    func screen(_ session: String, shows text: String) async throws -> String {
        var pane = ""
        for _ in 0..<100 {
            pane = try await tmux("capture-pane", "-t", session, "-p")
            if pane.contains(text) { return pane }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("the screen never showed '\(text)':\n\(pane)")
        return pane
    }

    @Test func itFeelsLikeSSH() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("tmux")
            let session = "agentbox-e2e-\(UInt32.random(in: 0...UInt32.max))"
            let command = "AGENTBOX_ENDPOINT=\(server.endpoint.absoluteString) AGENTBOX_TOKEN=\(server.token!) \(AgentBoxBinary.path) shell tmux; echo EXIT=$?; sleep 60"
            try await tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", command)
            defer { Task { try? await tmux("kill-session", "-t", session) } }

            _ = try await screen(session, shows: "root@workspace")
            try await tmux("send-keys", "-t", session, "stty size; tty", "Enter")
            var pane = try await screen(session, shows: "/dev/pts/")
            #expect(pane.contains("40 120"), "the shell has the window's size:\n\(pane)")

            try await tmux("send-keys", "-t", session, "sleep 100", "Enter")
            try await Task.sleep(for: .milliseconds(500))
            try await tmux("send-keys", "-t", session, "C-c")
            try await tmux("send-keys", "-t", session, "echo alive-$((40+2))", "Enter")
            _ = try await screen(session, shows: "alive-42")

            try await tmux("resize-window", "-t", session, "-x", "90", "-y", "20")
            try await Task.sleep(for: .milliseconds(300))
            try await tmux("send-keys", "-t", session, "stty size", "Enter")
            pane = try await screen(session, shows: "20 90")

            try await tmux("send-keys", "-t", session, "exit 7", "Enter")
            pane = try await screen(session, shows: "EXIT=")
            #expect(pane.contains("EXIT=7"), "agentbox shell exits with the shell's code:\n\(pane)")
            try await tmux("kill-session", "-t", session)
            await server.stop()
        }
    }
}
