import CAgentBoxSandbox
import Foundation
import Synchronization

/// The ids of one workspace: a range of host uids (and gids) of its own, mapped into its user namespace, so that its
/// processes may be root (uid 0 inside) while being an unprivileged host uid outside.
///
/// Inside ids 0–1999 map to `start`…`start + 1999` and 65534–65535 (`nobody`, `nogroup`) to `start + 2046`…
/// `start + 2047`; every other id is unmapped (shown as `nobody`, and refused by chown).
public struct WorkspaceIDs: Sendable, Equatable {
    /// Host ids each workspace owns.
    public static let slot: UInt32 = 2048
    /// Inside ids below this are mapped one to one.
    public static let mapped: UInt32 = 2000
    /// The uid the agent user (`agent`) has inside.
    public static let agent: UInt32 = 1000

    /// The host uid of the workspace's root.
    public let start: UInt32

    public init(start: UInt32) { self.start = start }

    /// The host id of inside id `id`, or `nil` when it is not mapped.
    public func host(_ id: UInt32) -> UInt32? {
        if id < Self.mapped { return start + id }
        if id >= 65534, id <= 65535 { return start + Self.slot - 2 + (id - 65534) }
        return nil
    }

    /// The inside id of host id `id`, or `nil` when it is not this workspace's.
    public func inside(_ id: UInt32) -> UInt32? {
        guard id >= start, id < start + Self.slot else { return nil }
        let offset = id - start
        if offset < Self.mapped { return offset }
        if offset >= Self.slot - 2 { return 65534 + offset - (Self.slot - 2) }
        return nil
    }

    /// The text of `/proc/PID/uid_map` (and gid_map).
    var map: String { "0 \(start) \(Self.mapped)\n65534 \(start + Self.slot - 2) 2\n" }
}

/// A user namespace with a workspace's id map, held open by a descriptor.
final class UserNamespace: Sendable {
    let fd: Int32

    /// Makes the namespace, owned by the workspace's root uid (so bwrap, running as that uid, may join it).
    /// A namespace already made (a pre-started sandbox's, its map written): this value owns `descriptor`.
    init(descriptor: Int32) {
        fd = descriptor
    }

    init(_ ids: WorkspaceIDs) throws {
        let fd = ab_userns_open(ids.start, ids.map)
        guard fd >= 0 else { throw SandboxError.errno("create the workspace's user namespace") }
        self.fd = fd
    }

    /// A namespace that only maps ids, for an idmapped mount: through it, files that carry `storage`'s ids on disk
    /// appear with `ids`' (and files made through the mount by `ids`' processes are stored with `storage`'s). No
    /// process ever runs in it. The host's root maps to itself: the system layer's overlay makes its work
    /// directories and whiteouts with the credentials of its mounter (the server), which must be representable on
    /// disk, or the overlay falls back to read-only. Inside a sandbox the host's root is unmapped, as without this.
    init(mapping storage: WorkspaceIDs, to ids: WorkspaceIDs) throws {
        let fd = ab_userns_open(storage.start, "0 0 1\n\(storage.start) \(ids.start) \(WorkspaceIDs.slot)\n")
        guard fd >= 0 else { throw SandboxError.errno("create the user namespace of the workspace's storage ids") }
        self.fd = fd
    }

    /// A detached clone of the directory at `path`, idmapped through this namespace (read-write); the caller owns
    /// the descriptor.
    func idmappedTree(of path: String) throws -> Int32 {
        let directory = ab_open_path(path, 1)
        guard directory >= 0 else { throw SandboxError.errno("open \(path)") }
        defer { close(directory) }
        let tree = ab_idmapped_tree(directory, fd, 0)
        guard tree >= 0 else { throw SandboxError.errno("idmap \(path)") }
        return tree
    }

    deinit { close(fd) }
}

/// The storage namespaces (``UserNamespace/init(mapping:to:)``) of the workspaces booted last: a wake takes its
/// workspace's from here instead of making one (a process and two id maps, ~0.3 ms). Such a namespace maps ids and
/// nothing else, holds no process and cannot change, so one is as good as a new one. At most `capacity` descriptors.
final class StorageNamespaceCache: Sendable {
    /// Keyed by both ranges' first ids.
    private let entries: Mutex<RecentlyUsed<UInt64, UserNamespace>>

    init(capacity: Int) {
        entries = Mutex(RecentlyUsed(capacity: capacity))
    }

    func namespace(mapping storage: WorkspaceIDs, to ids: WorkspaceIDs) throws -> UserNamespace {
        let key = UInt64(storage.start) << 32 | UInt64(ids.start)
        if let cached = entries.withLock({ $0.use(key) }) { return cached }
        let made = try UserNamespace(mapping: storage, to: ids)
        let dropped = entries.withLock { $0.put(made, for: key) }
        _ = dropped  // closed here, outside the lock
        return made
    }
}

/// The system layers' overlays of the workspaces booted last, kept while they sleep: a wake clones its workspace's
/// (5 µs each) instead of making three overlay file systems (~0.3-0.5 ms each, the largest part of a boot). An entry is
/// used only while the workspace's upper and work directories are the ones its overlays were made on, and goes when
/// the workspace is destroyed or its files replaced (``forget(workspace:)``), when overlays are made anew for it, or when
/// more recently booted workspaces push it out (at most `capacity` entries, three descriptors each). Only the
/// workspace's own sandboxes ever use its overlays, one after the other, as they did when each boot made its own.
final class SystemLayerCache: Sendable {
    /// One workspace's overlays (detached mounts, owned: closed when the entry goes and no boot holds it).
    final class Entry: Sendable {
        let overlays: [Int32]
        let identity: [UInt64]
        init(overlays: [Int32], identity: [UInt64]) {
            self.overlays = overlays
            self.identity = identity
        }
        deinit { overlays.forEach { close($0) } }
    }

    /// How many boots used kept overlays.
    let reuses = Atomic<Int>(0)
    private let entries: Mutex<RecentlyUsed<String, Entry>>

    init(capacity: Int) {
        entries = Mutex(RecentlyUsed(capacity: capacity))
    }

    /// The key of a workspace's system layer: the workspace, the ids its lower layers are mapped to, its image layers.
    static func key(workspace: String, ids: WorkspaceIDs, imageLayers: [URL]) -> String {
        ([workspace, String(ids.start)] + imageLayers.map(\.path)).joined(separator: "\u{0}")
    }

    /// The kept overlays of `key` when they were made on directories of this `identity` (else they are dropped). The
    /// caller holds the entry while it clones them.
    func entry(for key: String, identity: [UInt64]) -> Entry? {
        let (found, stale) = entries.withLock { entries -> (Entry?, Entry?) in
            guard let entry = entries.peek(key) else { return (nil, nil) }
            guard entry.identity == identity else { return (nil, entries.remove(key)) }
            return (entries.use(key), nil)
        }
        _ = stale  // closed here, outside the lock
        if found != nil { reuses.add(1, ordering: .relaxed) }
        return found
    }

    func keep(_ key: String, overlays: [Int32], identity: [UInt64]) {
        let dropped = entries.withLock { $0.put(Entry(overlays: overlays, identity: identity), for: key) }
        _ = dropped
    }

    func forget(_ key: String) {
        let dropped = entries.withLock { $0.remove(key) }
        _ = dropped
    }

    /// Drops every entry of `workspace` (its files are going, or being replaced).
    func forget(workspace: String) {
        let prefix = workspace + "\u{0}"
        let dropped = entries.withLock { $0.removeAll { $0.hasPrefix(prefix) } }
        _ = dropped
    }

    var count: Int { entries.withLock { $0.count } }
}

/// A workspace's system layer: `/usr`, `/etc` and `/var` are overlays whose lower layers are the host's `/usr` (and
/// AgentBox's `/etc` and `/var`, then any image's layers) and whose upper layer is the workspace's own, under
/// `<workspace>/system/`. Installs (`apt-get`, `pip`, `npm -g`) land there: they persist with the workspace's files,
/// count against its disk limit, and never reach the host or another workspace.
///
/// The lower layers are owned by the host's root; each is mounted "idmapped" through the workspace's user namespace,
/// so that inside they are owned by the workspace's root, who may then change them (copy-up into the upper layer).
/// The overlays are made by the server as detached mounts and attached only in the mount namespace of the sandbox's
/// launcher (`ab_spawn`): the host never sees them, and they go away with the sandbox.
public struct SystemLayer: Sendable {
    /// The directories that are overlays, and the base lower layer of each (top of the image chain comes first).
    struct Directory {
        var name: String
        var base: URL
    }

    /// What the launcher needs: the detached overlays with where to attach them, and bwrap's arguments.
    struct Mounted {
        var mounts: [(fd: Int32, target: String)]
        var arguments: [String]
        func close() { mounts.forEach { Glibc.close($0.fd) } }
    }

    let directories: [Directory]
    /// Plain directories of the workspace's own, kept with it: where software and other users' homes go.
    public static let plainDirectories = ["opt", "srv", "home"]

    /// The workspace's own part: `<workspace>/system/<name>/{upper,work,root}`.
    static func directory(of workspace: URL) -> URL { workspace.appendingPathComponent("system", isDirectory: true) }

    /// Creates the workspace's upper and work directories (owned by its root: `root` on disk) when missing.
    static func prepare(workspace: URL, names: [String], root: UInt32) throws {
        let system = directory(of: workspace)
        // Made at the first boot (a workspace made from an image has its plain directories already): two lstats tell
        // the later boots.
        var info = stat()
        if let last = names.last, lstat(system.appendingPathComponent(last).appendingPathComponent("root").path, &info) == 0,
            lstat(system.appendingPathComponent(plainDirectories.last!).path, &info) == 0
        {
            return
        }
        for path in [system] + names.flatMap({ name in ["upper", "work", "root"].map { system.appendingPathComponent(name).appendingPathComponent($0) } }) {
            var info = stat()
            if lstat(path.path, &info) == 0 { continue }
            try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true)
            guard chown(path.path, root, root) == 0 else { throw SandboxError.errno("chown \(path.path)") }
            chmod(path.path, path.lastPathComponent == "work" ? 0o700 : 0o755)
        }
        // The parent of each name was made by createDirectory above as the server: give it to the workspace's root too.
        for name in names {
            chown(system.appendingPathComponent(name).path, root, root)
        }
        for name in plainDirectories {
            let path = system.appendingPathComponent(name).path
            if mkdir(path, 0o755) == 0 {
                guard chown(path, root, root) == 0 else { throw SandboxError.errno("chown \(path)") }
            }
        }
    }

    /// Builds the overlays for one boot. `imageLayers` are image system layers (each a frozen `system/` directory,
    /// whose `<name>/upper` is the layer), top first; they were frozen with canonical ids (inside ids), so they are
    /// idmapped like the base. `storage`, when the workspace's files are kept in the storage range, is the workspace
    /// directory's idmapped tree: the upper and work directories are opened through it, so that the overlay stores
    /// what the workspace writes with the storage ids and shows it with the workspace's.
    ///
    /// With `cache` and `key` (the workspace, its ids and image layers), the overlays of the workspace's last boot are
    /// used again when its upper and work directories are still the ones they were made on (device, inode, birth
    /// time): the mounts returned are clones of the same overlays, and no file system is made. Overlays made anew
    /// replace the cached ones, so that no two overlays of one upper directory are ever used one after the other.
    func mount(
        workspace: URL, imageLayers: [URL], namespace: UserNamespace, storage: Int32? = nil, cache: SystemLayerCache? = nil,
        key: String? = nil
    ) throws -> Mounted {
        var result = Mounted(mounts: [], arguments: [])
        var opened: [Int32] = []
        defer { opened.forEach { Glibc.close($0) } }
        func openDirectory(_ url: URL) throws -> Int32 {
            let fd = ab_open_path(url.path, 1)
            guard fd >= 0 else { throw SandboxError.errno("open \(url.path)") }
            opened.append(fd)
            return fd
        }
        // A directory below the idmapped tree, without following a symlink on the way.
        func openBelow(_ tree: Int32, _ path: String) throws -> Int32 {
            let fd = ab_open_beneath(tree, path, AB_O_PATH | O_DIRECTORY, 0, 1)
            guard fd >= 0 else { throw SandboxError.errno("open \(path) in the workspace's storage mount") }
            opened.append(fd)
            return fd
        }
        let system = Self.directory(of: workspace)
        func target(_ directory: Directory) -> String { system.appendingPathComponent(directory.name).appendingPathComponent("root").path }
        do {
            let root = try openDirectory(system)
            var uppers: [Int32] = [], works: [Int32] = [], identity: [UInt64] = []
            for directory in directories {
                if let storage {
                    uppers.append(try openBelow(storage, "system/\(directory.name)/upper"))
                    works.append(try openBelow(storage, "system/\(directory.name)/work"))
                } else {
                    let own = system.appendingPathComponent(directory.name)
                    uppers.append(try openDirectory(own.appendingPathComponent("upper")))
                    works.append(try openDirectory(own.appendingPathComponent("work")))
                }
                for fd in [uppers.last!, works.last!] {
                    var four = [UInt64](repeating: 0, count: 4)
                    guard ab_directory_identity(fd, &four) == 0 else { throw SandboxError.errno("stat the system layer's /\(directory.name)") }
                    identity += four
                }
            }
            if let cache, let key, let kept = cache.entry(for: key, identity: identity) {
                for (directory, overlay) in zip(directories, kept.overlays) {
                    let clone = ab_detached_clone(overlay, "", 0, 0)
                    guard clone >= 0 else { throw SandboxError.errno("clone the system layer's /\(directory.name)") }
                    result.mounts.append((clone, target(directory)))
                    result.arguments += ["--bind", target(directory), "/\(directory.name)"]
                }
            } else {
                // Every overlay's lower layers first; then the overlays, made at once (each on a thread of its own: the
                // file system's checks of its work directory are most of a boot's preparation).
                var lowerFDs: [Int32] = [], firsts: [Int32] = [], counts: [Int32] = []
                for directory in directories {
                    var lowers: [Int32] = []
                    for layer in imageLayers + [directory.base] {
                        let source = layer == directory.base ? layer : layer.appendingPathComponent(directory.name).appendingPathComponent("upper")
                        // A layer the image never wrote to (no file under /var, say) adds nothing.
                        if layer != directory.base, !FileManager.default.fileExists(atPath: source.path) { continue }
                        let tree = ab_idmapped_tree(try openDirectory(source), namespace.fd, 1)
                        guard tree >= 0 else { throw SandboxError.errno("idmap \(source.path)") }
                        opened.append(tree)
                        lowers.append(tree)
                    }
                    firsts.append(Int32(lowerFDs.count))
                    counts.append(Int32(lowers.count))
                    lowerFDs += lowers
                }
                // Overlays on these upper directories are made now: the cached ones go first, whatever happens.
                if let key { cache?.forget(key) }
                let messageSize = 512
                var messages = [CChar](repeating: 0, count: messageSize * directories.count)
                var results = [Int32](repeating: -1, count: directories.count)
                _ = ab_overlay_mount_all(
                    Int32(directories.count), lowerFDs, firsts, counts, uppers, works, root, &results, &messages, messageSize)
                var failure: SandboxError?
                for (index, directory) in directories.enumerated() {
                    let overlay = results[index]
                    guard overlay >= 0 else {
                        let detail = String(decoding: messages[(index * messageSize)..<((index + 1) * messageSize)].prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                        failure = failure ?? SandboxError(
                            .startFailed,
                            "cannot mount the system layer's /\(directory.name): \(String(cString: strerror(-overlay)))\(detail.isEmpty ? "" : " (\(detail))")")
                        continue
                    }
                    result.mounts.append((overlay, target(directory)))
                    result.arguments += ["--bind", target(directory), "/\(directory.name)"]
                }
                if let failure { throw failure }
                if let cache, let key {
                    // The cache keeps these; the boot gets clones.
                    var clones: [(fd: Int32, target: String)] = []
                    for mount in result.mounts {
                        let clone = ab_detached_clone(mount.fd, "", 0, 0)
                        guard clone >= 0 else {
                            clones.forEach { Glibc.close($0.fd) }
                            throw SandboxError.errno("clone the system layer's overlays")
                        }
                        clones.append((clone, mount.target))
                    }
                    cache.keep(key, overlays: result.mounts.map(\.fd), identity: identity)
                    result.mounts = clones
                }
            }
        } catch {
            result.close()
            throw error
        }
        for name in Self.plainDirectories {
            result.arguments += ["--bind", system.appendingPathComponent(name).path, "/\(name)"]
        }
        return result
    }
}
