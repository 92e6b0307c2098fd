import Foundation
import Testing

@testable import AgentBoxACP

/// Children of the adapter (Claude Code, Codex's app server, stdio MCP servers) start with no signal blocked, so
/// that `terminate()` ends them, whatever the signal mask of the Swift concurrency thread that started them.
struct ProcessSignalsTests {
    @Test func aChildStartsWithNoSignalBlockedAndTerminateEndsIt() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["30"]
        try process.runWithDefaultSignalMask()
        let status = try String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        let blocked = status.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }
        #expect(blocked == "SigBlk:\t0000000000000000")
        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGTERM)
    }
}
