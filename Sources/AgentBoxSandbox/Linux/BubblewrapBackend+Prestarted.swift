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
        // A part of the bind message: its fields and the descriptors attached to it (indices count from 0 in each part).
        struct Part {
            var fields: [String] = []
            var descriptors: [Int32] = []
            mutating func attach(_ fd: Int32) -> String {
                descriptors.append(fd)
                return String(descriptors.count - 1)
            }
        }
        // What this function made (closed once sent).
        var owned: [Int32] = []
        defer { owned.forEach { close($0) } }
        func clone(_ path: String, readOnly: Bool = true, recursive: Bool = false, into part: inout Part) throws -> String {
            let fd = ab_detached_clone(AT_FDCWD, path, readOnly ? 1 : 0, recursive ? 1 : 0)
            guard fd >= 0 else { throw SandboxError.errno("clone the mount of \(path)") }
            owned.append(fd)
            return part.attach(fd)
        }
        let storageTree = try storageNamespaces.namespace(mapping: storage, to: ids).idmappedTree(of: spec.hostDirectory.path)
        owned.append(storageTree)
        let t2 = clock.now
        // The first part: all of the root that does not wait for the system layer's overlays (bwrap's arguments, in
        // their order, less the overlays), sent before they are made, so that the init builds it meanwhile.
        var first = Part()
        // The init attaches a clone of the tree: the tree itself stays detached, for the overlays' upper directories.
        let storageClone = ab_detached_clone(storageTree, "", 0, 0)
        guard storageClone >= 0 else { throw SandboxError.errno("clone the workspace's storage tree") }
        owned.append(storageClone)
        first.fields = ["storage", first.attach(storageClone)]
        for name in SystemLayer.plainDirectories {
            first.fields += ["bind", "system/\(name)", "/\(name)"]
        }
        for entry in SandboxRoot.topLevelEntries {
            if let target = entry.symlink {
                first.fields += ["symlink", target, entry.path]
            } else {
                first.fields += ["tree", try clone(entry.path, recursive: true, into: &first), entry.path]
            }
        }
        first.fields += [
            // /tmp and /run: directories of the root's tmpfs, not file systems of their own (see SandboxRoot.bwrapArguments).
            "proc", "/proc", "dev", "/dev", "dir", "/tmp", "1777", "dir", "/run", "755",
            "bind", "workspace", SandboxRoot.workspace, "bind", "home", SandboxRoot.home,
            "tree-file", try clone(initPath, into: &first), "/.agentbox/init", "symlink", "home/agent", "/root",
        ]
        for tool in tools {
            first.fields += ["tree-file", try clone(tool.path, into: &first), "/.agentbox/bin/\(tool.name)"]
        }
        first.fields += ["tree", try clone(agentsDirectory.path, recursive: true, into: &first), agentsPath]
        try sandbox.send(first.fields, descriptors: first.descriptors, more: true)
        let t3 = clock.now
        // From here the sandbox is this boot's: what fails before its last part ends it (nothing of the workspace ran
        // in it) and bwrap starts this one.
        let cgroups: SandboxCgroups
        let system: SystemLayer.Mounted
        var last = Part()
        do {
            system = try layer.mount(
                workspace: spec.hostDirectory, imageLayers: spec.imageLayers, namespace: namespace, storage: storageTree,
                cache: systemLayers, key: SystemLayerCache.key(workspace: spec.id, ids: ids, imageLayers: spec.imageLayers))
            for (directory, mount) in zip(layer.directories, system.mounts) {
                last.fields += ["tree", last.attach(mount.fd), "/\(directory.name)"]
            }
            last.fields += ["tmpfs", "/var/tmp", "1777", "0"]
            for mount in spec.mounts {
                switch mount {
                case .tmpfs(let path, let bytes):
                    last.fields += ["tmpfs", path, "777", String(bytes)]
                case .host(let hostPath, let path, let readOnly):
                    // Opened as the server without following a symlink (see openHostDirectory), then cloned.
                    let directory = try Self.openHostDirectory(hostPath)
                    defer { close(directory) }
                    let fd = ab_detached_clone(directory, "", readOnly ? 1 : 0, 1)
                    guard fd >= 0 else { throw SandboxError.errno("clone the mount of \(hostPath)") }
                    owned.append(fd)
                    last.fields += ["tree", last.attach(fd), path]
                }
            }
            last.fields += ["hostname", spec.hostname, "chdir", SandboxRoot.workspace, "caps", String(SandboxRoot.rootCapabilityMask, radix: 16)]
            // The sandbox runs in its cgroups since it started: they get the workspace's limits before its last part.
            guard let made = sandbox.cgroups else { throw SandboxError(.startFailed, "a pre-started sandbox without cgroups") }
            cgroups = made
            try cgroups.apply(spec.limits)
        } catch {
            sandbox.abandon()
            throw PrestartedSandbox.Unusable(reason: "\(error)")
        }
        defer { system.close() }
        let prepared = clock.now
        try sandbox.send(last.fields, descriptors: last.descriptors, more: false)
        let sent = clock.now
        let supervisor: Supervisor
        do {
            supervisor = try await Supervisor.adopt(
                control: sandbox.control, launcherPID: sandbox.launcherPID, logger: logger)
        } catch {
            await cgroups.remove()
            throw error
        }
        logger.debug(
            "sandbox started",
            metadata: [
                "prepare.ms": "\((prepared - began).milliseconds)", "launch.ms": "\((clock.now - sent).milliseconds)", "prestarted": "true",
                "phases.ms": "directories \((t0 - began).milliseconds), id map \((t1 - t0).milliseconds), storage tree \((t2 - t1).milliseconds), first part \((t3 - t2).milliseconds), overlays and limits \((prepared - t3).milliseconds), last part \((sent - prepared).milliseconds)",
            ])
        // It parks when its workspace sleeps, if the directories it was built from can be told apart later.
        let parking = parked.accepts
            ? ParkedSandboxes.Fingerprint.of(spec, ids: ids, storage: storage, layers: layer.directories.map(\.name)).map {
                LinuxSandbox.Parking(sandboxes: parked, workspace: spec.id, fingerprint: $0, limits: spec.limits, logger: logger)
            } : nil
        return LinuxSandbox(supervisor: supervisor, cgroups: cgroups, runsAsRoot: true, parking: parking)
    }
}
