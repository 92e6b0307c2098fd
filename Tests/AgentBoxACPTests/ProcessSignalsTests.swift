import Foundation
import Testing

@testable import AgentBoxACP

/// Children of the adapter (Claude Code, Codex's app server, stdio MCP servers) start with no signal blocked, so
/// that `terminate()` ends them, whatever the signal mask of the Swift concurrency thread that started them.
struct ProcessSignalsTests {
    @Test(.timeLimit(.minutes(1))) func aChildStartsWithNoSignalBlockedAndTerminateEndsIt() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["30"]
        // How Foundation saw it end, if it reaps it before the waitpid below does (its SIGCHLD handling runs on a
        // queue of its own: until this handler runs, `terminationReason` would trap as "still running").
        let (ended, endedContinuation) = AsyncStream.makeStream(of: (Process.TerminationReason, Int32).self)
        process.terminationHandler = { finished in
            endedContinuation.yield((finished.terminationReason, finished.terminationStatus))
            endedContinuation.finish()
        }
        try process.runWithDefaultSignalMask()
        let procStatus = try String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        let blocked = procStatus.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }
        #expect(blocked == "SigBlk:\t0000000000000000")
        process.terminate()
        // waitpid, not Foundation's waitUntilExit (which can spin for ever in this test process, see ChildJSONRPC.kill).
        var status: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(process.processIdentifier, &status, 0) } while result < 0 && errno == EINTR
        if result == process.processIdentifier {
            #expect(status & 0x7f == SIGTERM, "ended by SIGTERM: status \(status)")
        } else {
            // Foundation reaped it first: its termination handler says how it ended.
            var outcomes = ended.makeAsyncIterator()
            let outcome = await outcomes.next()
            #expect(outcome?.0 == .uncaughtSignal && outcome?.1 == SIGTERM, "\(String(describing: outcome))")
        }
    }
}
