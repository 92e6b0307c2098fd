import AgentBoxAPI
import AgentBoxSandbox
import Foundation

/// One process of a workspace, as its runtime tracks it. Confined to the workspace's actor.
final class ProcessEntry {
    var info: WorkspaceProcess
    let handle: SandboxProcess
    var stdout: OutputBuffer
    var stderr: OutputBuffer
    var carry: [ProcessStream: [UInt8]] = [:]
    var activity: WorkspaceRuntime.Activity?
    var pump: Task<Void, Never>?
    var timedOut = false
    /// Publishes its output as workspace events (internal helpers such as tar do not).
    var publishesOutput = true
    /// Newlines seen on stdout (for helpers whose output is a list).
    var stdoutLines = 0
    var exitWaiters: [UInt64: CheckedContinuation<WorkspaceProcess?, Never>] = [:]

    init(info: WorkspaceProcess, handle: SandboxProcess, policy: (Int) -> OutputBuffer.Policy, limit: Int) {
        self.info = info
        self.handle = handle
        self.stdout = OutputBuffer(policy(limit))
        self.stderr = OutputBuffer(policy(limit))
    }

    var isRunning: Bool { info.status == .running }
}

/// The processes of one workspace: the running ones and a bounded memory of exited ones.
struct ProcessTable {
    private(set) var entries: [String: ProcessEntry] = [:]
    /// Ids in start order, for listing and for forgetting the oldest exited first.
    private var order: [String] = []
    private var nextWaiterID: UInt64 = 0

    subscript(id: String) -> ProcessEntry? { entries[id] }

    mutating func insert(_ entry: ProcessEntry, exitedMemory: Int) {
        entries[entry.info.id] = entry
        order.append(entry.info.id)
        forgetOldExited(keeping: exitedMemory)
    }

    mutating func forgetOldExited(keeping limit: Int) {
        var exited = order.filter { entries[$0]?.isRunning == false }
        while exited.count > limit {
            let id = exited.removeFirst()
            entries[id] = nil
            order.removeAll { $0 == id }
        }
    }

    var all: [WorkspaceProcess] { order.compactMap { entries[$0]?.info } }
    var running: [ProcessEntry] { order.compactMap { entries[$0] }.filter(\.isRunning) }
    var pumps: [Task<Void, Never>] { entries.values.compactMap(\.pump) }

    mutating func makeWaiterID() -> UInt64 {
        defer { nextWaiterID += 1 }
        return nextWaiterID
    }

    /// A new process id: `proc_` and 12 random characters of [a-z0-9].
    static func makeID() -> String { RandomID.make(prefix: "proc_", length: 12) }
}
