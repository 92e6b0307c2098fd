import AgentBox
import AgentBoxAPI
@testable import AgentBoxSandbox
import Foundation
import Testing

/// A pre-started sandbox's init trusts no bind message blindly, and a boot survives a pool sandbox that died.
@Suite("Pre-started sandboxes", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct PrestartedSandboxTests {
    /// Starts one (no cgroups), maps its namespace to a range of its own, sends `fields` and returns what its init said
    /// on its diagnostics and its launcher's exit status.
    func bindAndWait(_ fields: [String], descriptors: [Int32] = []) async throws -> (said: String, status: Int32) {
        let initPath = AgentBoxConfiguration.defaultSandboxInitPath()
        let sandbox = try PrestartedSandbox.start(initPath: initPath, stage: try SandboxRoot.prepareStage().path, cgroups: nil)
        try sandbox.writeIDMap(WorkspaceIDs(start: 1_900_000_000 + UInt32.random(in: 0..<1000) * WorkspaceIDs.slot).map)
        try sandbox.bind(fields, descriptors: descriptors)
        // The boot owns it now: read its last words, reap its launcher, close the rest.
        let said = Self.readToEnd(sandbox.control)
        var status: Int32 = 0
        while waitpid(sandbox.launcherPID, &status, 0) < 0, errno == EINTR {}
        close(sandbox.control)
        return (said, status)
    }

    /// What the init said on its control socket (its stdout and stderr), every message, until its end.
    static func readToEnd(_ control: Int32) -> String {
        var said = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(control, &buffer, buffer.count, 0)
            if count <= 0 { break }
            said += buffer[..<count]
        }
        return String(decoding: said, as: UTF8.self)
    }

    @Test(arguments: [
        (["hostname", "x", "chdir", "/"], "no capabilities given"),
        (["caps", "0", "frobnicate", "/x"], "unknown operation frobnicate"),
        (["caps", "0", "tree", "7", "/x"], "no descriptor 7"),
        (["caps", "0", "tree", "", "/x"], "no descriptor"),
        (["caps", "0", "tmpfs", "/a/../../etc", "755", "0"], "bad path"),
        (["caps", "0", "dir", "relative", "755"], "bad path"),
        (["caps", "0", "bind", "../../etc", "/x"], "bad source"),
        (["caps", "0", "bind", "/etc", "/x"], "bad source"),
        (["caps", "0", "tmpfs", "/x"], "tmpfs needs 3 fields"),
    ])
    func aBadBindMessageIsRefusedAndTheSandboxEnds(fields: [String], said expected: String) async throws {
        let (said, status) = try await bindAndWait(fields)
        #expect(said.contains(expected), "\(said)")
        #expect(status != 0, "the launcher exits with its PID 1's failure")
    }

    @Test func aMessageCutInTheMiddleOfAFieldIsRefused() async throws {
        let initPath = AgentBoxConfiguration.defaultSandboxInitPath()
        let sandbox = try PrestartedSandbox.start(initPath: initPath, stage: try SandboxRoot.prepareStage().path, cgroups: nil)
        try sandbox.writeIDMap(WorkspaceIDs(start: 1_900_000_000 + UInt32.random(in: 0..<1000) * WorkspaceIDs.slot).map)
        let message = Array("caps\u{0}0\u{0}hostname\u{0}unterminated".utf8)
        #expect(send(sandbox.bindSocket, message, message.count, 0) == message.count)
        var status: Int32 = 0
        while waitpid(sandbox.launcherPID, &status, 0) < 0, errno == EINTR {}
        #expect(Self.readToEnd(sandbox.control).contains("does not end with a field's end"))
        #expect(status != 0)
    }

    /// A sandbox whose PID 1 died while it waited in the pool is not bound: the boot starts its own with bwrap.
    @Test func aSandboxThatDiedInThePoolIsReplacedByBwrap() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try makeManager(directory, sandboxPool: 1, prestartedSandboxes: true)
            let pool = try #require((manager.configuration.sandbox as? BubblewrapBackend)?.pool)
            try pool.fillNow()
            guard case .sandbox(let dead)? = pool.take() else {
                Issue.record("the pool holds no pre-started sandbox")
                return
            }
            kill(dead.initPID, SIGKILL)
            while dead.isWaiting { try await Task.sleep(for: .milliseconds(5)) }
            pool.putBack(.sandbox(dead))
            let result = try await manager.run("survivor", "echo alive; cat /proc/1/cmdline | tr '\\0' ' '")
            #expect(result.exitCode == 0 && result.stdout.hasPrefix("alive\n"), "\(result.stdout) \(result.stderr)")
            #expect(!result.stdout.contains("--prestarted"), "bwrap started it: \(result.stdout)")
            await manager.shutdown()
        }
    }
}
