import AgentBoxAPI
import AgentBoxSandbox
import Foundation

/// Checks the `mounts` of a workspace config and turns them into sandbox mounts.
enum MountValidation {
    /// Where nothing may be mounted: the system the sandbox borrows, the supervisor, and the persistent roots
    /// themselves (a directory inside them is fine).
    static let reservedPrefixes = ["/usr", "/etc", "/proc", "/dev", "/sys", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/.agentbox"]
    static let reservedExactly = ["/", "/workspace", "/home/agent", "/home", "/root", "/opt", "/srv", "/tmp", "/run", "/var", "/var/tmp"]
    static let maxMounts = 16
    static let maxTmpfsMb = 65536

    /// Validates `mounts` against this server's configuration; returns them normalised (paths cleaned, host paths
    /// resolved, defaults filled in).
    static func validate(_ mounts: [WorkspaceMount], configuration: AgentBoxConfiguration) throws -> [WorkspaceMount] {
        guard mounts.count <= maxMounts else { throw AgentBoxError(.invalidArgument, "at most \(maxMounts) mounts") }
        if !mounts.isEmpty, configuration.sandbox?.name != "linux" {
            throw AgentBoxError(.unsupported, "mounts need the linux sandbox; this server runs \(configuration.sandbox?.name ?? "no sandbox")")
        }
        var seen: Set<String> = []
        return try mounts.map { mount in
            guard mount.path.hasPrefix("/") else { throw AgentBoxError(.invalidArgument, "mount path '\(mount.path)' must be absolute") }
            let path = try WorkspacePath(mount.path).description
            if reservedExactly.contains(path) || reservedPrefixes.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) {
                throw AgentBoxError(.invalidArgument, "nothing may be mounted at '\(path)'")
            }
            guard seen.insert(path).inserted else { throw AgentBoxError(.invalidArgument, "two mounts at '\(path)'") }
            var normalised = mount
            normalised.path = path
            switch mount.type {
            case .tmpfs:
                let size = mount.sizeMb ?? 64
                guard (1...maxTmpfsMb).contains(size) else { throw AgentBoxError(.invalidArgument, "tmpfs sizeMb must be 1...\(maxTmpfsMb), not \(size)") }
                guard mount.hostPath == nil else { throw AgentBoxError(.invalidArgument, "a tmpfs mount takes no hostPath") }
                normalised.sizeMb = size
            case .host:
                guard let hostPath = mount.hostPath, hostPath.hasPrefix("/"), !hostPath.utf8.contains(0) else {
                    throw AgentBoxError(.invalidArgument, "a host mount needs an absolute hostPath")
                }
                // The real path, symlinks resolved, is what must lie under an allowed prefix.
                guard let real = realPath(hostPath) else { throw AgentBoxError(.invalidArgument, "hostPath '\(hostPath)' does not exist") }
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory), isDirectory.boolValue else {
                    throw AgentBoxError(.invalidArgument, "hostPath '\(hostPath)' is not a directory")
                }
                let allowed = configuration.allowedHostMountPrefixes.compactMap(realPath)
                guard allowed.contains(where: { real == $0 || real.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) else {
                    throw AgentBoxError(.forbidden, "hostPath '\(hostPath)' is not under a prefix this server allows (serve --allow-host-mount PREFIX)")
                }
                normalised.hostPath = real
                normalised.readOnly = mount.readOnly ?? true
                normalised.sizeMb = nil
            }
            return normalised
        }
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func sandboxMounts(_ mounts: [WorkspaceMount]) -> [SandboxMount] {
        mounts.map { mount in
            switch mount.type {
            case .tmpfs: .tmpfs(path: mount.path, bytes: Int64(mount.sizeMb ?? 64) << 20)
            case .host: .host(hostPath: mount.hostPath ?? "/nonexistent", path: mount.path, readOnly: mount.readOnly ?? true)
            }
        }
    }
}
