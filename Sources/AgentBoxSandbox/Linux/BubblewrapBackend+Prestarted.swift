import CAgentBoxSandbox
import Foundation
import Logging

extension BubblewrapBackend {
    /// Boots a workspace in a sandbox started ahead of it: writes the workspace's id map into the sandbox's user
    /// namespace, makes the workspace's mounts (its storage tree, idmapped to its range; its system layer's overlays,
    /// through the sandbox's own namespace; read-only binds of AgentBox's binaries and any host mounts) as detached
    /// mounts, moves the sandbox's PID 1 into the workspace's cgroups, and sends the bind message that has PID 1 build
    /// the same root file system as bwrap's arguments describe (see `prestart.c`). The directories were prepared by
    /// ``start(_:logger:)``.
    func bind(
        _ sandbox: PrestartedSandbox, spec: SandboxSpec, ids: WorkspaceIDs, storage: WorkspaceIDs,
        began: ContinuousClock.Instant, logger: Logger
    ) async throws -> any Sandbox {
        guard sandbox.isWaiting else { throw PrestartedSandbox.Unusable(reason: "it ended in the pool") }
        do {
            return try await bindWaiting(sandbox, spec: spec, ids: ids, storage: storage, began: began, logger: logger)
        } catch let error as PrestartedSandbox.Unusable {
            throw error
        } catch where !sandbox.isBound {
            // Nothing was sent: bwrap starts this sandbox, and says what it cannot do if it cannot either.
            throw PrestartedSandbox.Unusable(reason: "\(error)")
        }
    }

    private func bindWaiting(
        _ sandbox: PrestartedSandbox, spec: SandboxSpec, ids: WorkspaceIDs, storage: WorkspaceIDs,
        began: ContinuousClock.Instant, logger: Logger
    ) async throws -> any Sandbox {
        let clock = ContinuousClock()
        let layer = systemLayer
        try SystemLayer.prepare(workspace: spec.hostDirectory, names: layer.directories.map(\.name), root: storage.start)
        let t0 = clock.now
        try sandbox.writeIDMap(ids.map)
        let namespace = UserNamespace(descriptor: try sandbox.openUserNamespace())
        let t1 = clock.now
        // Descriptors sent with the message, and those of them this function made (closed once sent).
        var descriptors: [Int32] = []
        var owned: [Int32] = []
        defer { owned.forEach { close($0) } }
        func send(_ fd: Int32, owned isOwned: Bool = true) -> String {
            descriptors.append(fd)
            if isOwned { owned.append(fd) }
            return String(descriptors.count - 1)
        }
        func clone(_ path: String, readOnly: Bool = true, recursive: Bool = false) throws -> String {
            let fd = ab_detached_clone(AT_FDCWD, path, readOnly ? 1 : 0, recursive ? 1 : 0)
            guard fd >= 0 else { throw SandboxError.errno("clone the mount of \(path)") }
            return send(fd)
        }
        let storageTree = try storageNamespaces.namespace(mapping: storage, to: ids).idmappedTree(of: spec.hostDirectory.path)
        var fields = ["storage", send(storageTree)]
        let t2 = clock.now
        let system = try layer.mount(
            workspace: spec.hostDirectory, imageLayers: spec.imageLayers, namespace: namespace, storage: storageTree, cache: systemLayers,
            key: SystemLayerCache.key(workspace: spec.id, ids: ids, imageLayers: spec.imageLayers))
        defer { system.close() }
        let prepared = clock.now
        // The same root as bwrap's arguments build (SandboxRoot.bwrapArguments), in the same order.
        for (directory, mount) in zip(layer.directories, system.mounts) {
            fields += ["tree", send(mount.fd, owned: false), "/\(directory.name)"]
        }
        for name in SystemLayer.plainDirectories {
            fields += ["bind", "system/\(name)", "/\(name)"]
        }
        for name in SandboxRoot.topLevel {
            let path = "/\(name)"
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                fields += ["symlink", target, path]
            } else {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                    fields += ["tree", try clone(path, recursive: true), path]
                }
            }
        }
        fields += [
            "proc", "/proc", "dev", "/dev", "tmpfs", "/tmp", "1777", "0", "tmpfs", "/var/tmp", "1777", "0",
            "tmpfs", "/run", "755", "0", "bind", "workspace", SandboxRoot.workspace, "bind", "home", SandboxRoot.home,
            "tree-file", try clone(initPath), "/.agentbox/init", "symlink", "home/agent", "/root",
        ]
        for tool in tools {
            fields += ["tree-file", try clone(tool.path), "/.agentbox/bin/\(tool.name)"]
        }
        fields += ["tree", try clone(agentsDirectory.path, recursive: true), agentsPath]
        for mount in spec.mounts {
            switch mount {
            case .tmpfs(let path, let bytes):
                fields += ["tmpfs", path, "777", String(bytes)]
            case .host(let hostPath, let path, let readOnly):
                // Opened as the server without following a symlink (see openHostDirectory), then cloned.
                let directory = try Self.openHostDirectory(hostPath)
                defer { close(directory) }
                let fd = ab_detached_clone(directory, "", readOnly ? 1 : 0, 1)
                guard fd >= 0 else { throw SandboxError.errno("clone the mount of \(hostPath)") }
                fields += ["tree", send(fd), path]
            }
        }
        fields += ["hostname", spec.hostname, "chdir", SandboxRoot.workspace, "caps", String(SandboxRoot.rootCapabilityMask, radix: 16)]
        let t3 = clock.now
        // The sandbox runs in its cgroups since it started: they get the workspace's limits before it is bound.
        guard let cgroups = sandbox.cgroups else { throw SandboxError(.startFailed, "a pre-started sandbox without cgroups") }
        try cgroups.apply(spec.limits)
        let t4 = clock.now
        try sandbox.bind(fields, descriptors: descriptors)
        let sent = clock.now
        let supervisor: Supervisor
        do {
            supervisor = try await Supervisor.adopt(
                control: sandbox.control, launcherPID: sandbox.launcherPID, replies: sandbox.replies,
                diagnostics: sandbox.diagnostics, logger: logger)
        } catch {
            await cgroups.remove()
            throw error
        }
        logger.debug(
            "sandbox started",
            metadata: [
                "prepare.ms": "\((prepared - began).milliseconds)", "bind.ms": "\((sent - prepared).milliseconds)",
                "launch.ms": "\((clock.now - sent).milliseconds)", "prestarted": "true",
                "phases.ms": "directories \((t0 - began).milliseconds), id map \((t1 - t0).milliseconds), storage tree \((t2 - t1).milliseconds), overlays \((prepared - t2).milliseconds), mounts \((t3 - prepared).milliseconds), limits \((t4 - t3).milliseconds), message \((sent - t4).milliseconds)",
            ])
        return LinuxSandbox(supervisor: supervisor, cgroups: cgroups, runsAsRoot: true)
    }
}
