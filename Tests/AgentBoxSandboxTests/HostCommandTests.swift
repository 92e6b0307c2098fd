import AgentBoxSandbox
import Foundation
import Testing

@Suite("Host commands")
struct HostCommandTests {
    @Test func aCommandsStatusAndStderrComeBack() throws {
        let result = try HostCommand.run("/bin/sh", ["-c", "echo out; echo oops >&2; exit 3"])
        #expect(result.status == 3 && result.stderr == "oops\n", "\(result)")
        #expect(try HostCommand.run("/bin/sh", ["-c", "kill -9 $$"]).status == 128 + 9, "a signal's end is 128 + it")
    }

    @Test func stderrIsReadToItsEndButKeptToItsBound() throws {
        // 1 MiB on stderr: more than a pipe holds, so the program would hang if the reading stopped at the bound.
        let result = try HostCommand.run("/bin/sh", ["-c", "head -c 1048576 /dev/zero | tr '\\0' x >&2; exit 0"], maximumError: 1000)
        #expect(result.status == 0 && result.stderr.count == 1000 && result.stderr.allSatisfy { $0 == "x" }, "\(result.status) \(result.stderr.count)")
    }

    @Test func aMissingProgramThrows() {
        #expect(throws: (any Error).self) { try HostCommand.run("/nonexistent/program", []) }
    }
}
