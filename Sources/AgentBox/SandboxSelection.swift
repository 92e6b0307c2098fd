import AgentBoxSandbox
import Foundation
import Logging

/// Which sandbox backend a server uses.
public enum SandboxKind: String, Sendable, CaseIterable {
    /// bubblewrap namespaces and cgroups (the default on Linux).
    case linux
    /// No isolation, for macOS and development.
    case unsandboxed

    /// Prepares the backend of this kind. Returns it with the lines the server must say at start-up: what it
    /// cannot enforce on this host, and loud warnings. `sandboxPool` is how many boots' namespaces the Linux backend
    /// makes ahead (``SandboxPool``; 0: none); the manager's background work keeps them made. `prestartedSandboxes`
    /// chooses whole pre-started sandboxes where the host allows them (`nil`: unless `AGENTBOX_PRESTARTED_SANDBOXES=0`),
    /// else network and IPC namespaces. Up to `parkedSandboxes` sandboxes of sleeping workspaces are kept, parked, for
    /// their wakes (with pre-started sandboxes; ``ParkedSandboxes``).
    public func makeBackend(
        dataDirectory: URL, initPath: String = AgentBoxConfiguration.defaultSandboxInitPath(), sandboxPool: Int = 0,
        prestartedSandboxes: Bool? = nil, parkedSandboxes: Int = 0, logger: Logger = Logger(label: "agentbox.sandbox")
    ) throws -> (backend: any SandboxBackend, notes: [String]) {
        switch self {
        case .linux:
            let (backend, notes) = try BubblewrapBackend.make(
                stateDirectory: dataDirectory.appendingPathComponent("sandbox", isDirectory: true), initPath: initPath,
                poolSize: sandboxPool, prestartedSandboxes: prestartedSandboxes, parkedSandboxes: parkedSandboxes, logger: logger)
            return (backend, notes)
        case .unsandboxed:
            return (
                UnsandboxedBackend(initPath: initPath, agentsDirectory: dataDirectory.appendingPathComponent("agents").path),
                ["WARNING: workspaces are NOT isolated (--sandbox unsandboxed): their processes run on this host as this user, with only rlimits"]
            )
        }
    }
}
