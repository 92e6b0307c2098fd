import ChildProcessSupport
import Foundation
import Testing

@testable import AgentBoxSandbox

@Suite("Sandbox cgroups", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct CgroupsTests {
    /// A group whose last process is still there when its sandbox ends is removed once the process is gone, not left
    /// for good (a bench that made and deleted 1,300 workspaces under load left 838 memory cgroups).
    @Test func aGroupStillBusyWhenItsSandboxEndsIsRemovedOnceItsProcessIsGone() async throws {
        let (version, problem) = SandboxCgroups.probe()
        try #require(problem == nil, "\(problem ?? "")")
        let id = "test-busy-\(UUID().uuidString.prefix(8))"
        let cgroups = try SandboxCgroups.create(id: id, version: version, limits: SandboxLimits())
        // A process in the groups: `remove` cannot take them while it lives.
        let sleeper = try sleeper(in: cgroups)
        await cgroups.remove()
        #expect(cgroups.directories.allSatisfy { FileManager.default.fileExists(atPath: $0.path) }, "busy: still there")
        #expect(LeftoverCgroups.shared.count >= 1)
        sleeper.signal(SIGKILL)
        sleeper.waitUntilExit()
        // Tried again at growing intervals, at most 10 s apart (the bound is only there to end a failing test).
        var gone = false
        for _ in 0..<600 where !gone {
            try await Task.sleep(for: .milliseconds(50))
            gone = cgroups.directories.allSatisfy { !FileManager.default.fileExists(atPath: $0.path) }
        }
        #expect(gone, "\(cgroups.directories.map(\.path))")
    }

    /// At start, a server removes the empty groups that killed servers left (older than a minute), and never a group
    /// with a process in it.
    @Test func theStartSweepRemovesEmptyLeftoversAndKeepsBusyGroups() async throws {
        let (version, problem) = SandboxCgroups.probe()
        try #require(problem == nil, "\(problem ?? "")")
        let empty = try SandboxCgroups.create(id: "test-left-\(UUID().uuidString.prefix(8))", version: version, limits: SandboxLimits())
        let busy = try SandboxCgroups.create(id: "test-held-\(UUID().uuidString.prefix(8))", version: version, limits: SandboxLimits())
        let fresh = try SandboxCgroups.create(id: "test-new-\(UUID().uuidString.prefix(8))", version: version, limits: SandboxLimits())
        let sleeper = try sleeper(in: busy)
        // Made two minutes ago, as far as the sweep can tell.
        let old = Date().addingTimeInterval(-120)
        for directory in empty.directories + busy.directories {
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: directory.path)
        }
        SandboxCgroups.removeLeftoverGroups(version: version)
        #expect(empty.directories.allSatisfy { !FileManager.default.fileExists(atPath: $0.path) })
        #expect(busy.directories.allSatisfy { FileManager.default.fileExists(atPath: $0.path) })
        #expect(fresh.directories.allSatisfy { FileManager.default.fileExists(atPath: $0.path) }, "one being made is kept")
        sleeper.signal(SIGKILL)
        sleeper.waitUntilExit()
        try await Task.sleep(for: .milliseconds(200))
        await busy.remove()
        await fresh.remove()
    }

    /// A `sleep 30` moved into every group of `cgroups`.
    private func sleeper(in cgroups: SandboxCgroups) throws -> ChildProcess {
        let sleeper = ChildProcess()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        for directory in cgroups.directories {
            try "\(sleeper.processIdentifier)".write(to: directory.appendingPathComponent("cgroup.procs"), atomically: false, encoding: .utf8)
        }
        return sleeper
    }
}
