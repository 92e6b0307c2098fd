import AgentBoxSandbox
import CAgentBoxSandbox
import Foundation
import Logging
import Synchronization

/// The btrfs file system that holds the workspaces' persistent files when their disk is limited: one subvolume per
/// workspace (its `workspace/` and `home/`), one read-only snapshot subvolume per snapshot, and a quota group per
/// workspace whose limit is its `diskMb`.
///
/// The pool is `<data-dir>/pool`: a btrfs that an administrator mounted there, or else AgentBox's own sparse image
/// `<data-dir>/pool.img` on a loop device, made on first start and mounted at every start. Quotas are btrfs *simple
/// quotas* where the kernel has them (Linux 6.7): each extent is charged to the subvolume that wrote it for as long
/// as it exists, with no back-reference walks on commits; else full qgroups.
///
/// Each workspace has a level-1 quota group `1/<sandbox number>` holding its subvolume, the subvolumes it makes
/// inside it (simple quotas add those by themselves) and its snapshots; the group carries the limit. A write past it
/// fails inside the workspace with `EDQUOT` ("Disk quota exceeded").
///
/// Every call here is a blocking system call (a snapshot commits a transaction): run them off the event loops.
public final class DiskPool: Sendable {
    /// How quota groups count.
    public enum QuotaMode: String, Sendable {
        /// Simple quotas: an extent is charged to the subvolume that allocated it, until it is freed.
        case simple
        /// Full qgroups: referenced and exclusive bytes, tracked through every shared extent.
        case full
    }

    /// Where the pool is mounted: `<data-dir>/pool`.
    public let mountPoint: URL
    public let quotaMode: QuotaMode
    /// The pool's size in bytes, as the file system reports it.
    public let sizeBytes: Int64
    /// Whether AgentBox mounted its own image here (and so unmounts it at shutdown).
    let ownsMount: Bool
    /// The pool's root directory, kept open until ``unmount()``: every ioctl goes through it.
    private let root: Mutex<Int32>
    private var rootFD: Int32 { root.withLock { $0 } }
    /// `/sys/fs/btrfs/<fsid>/qgroups`, where the kernel shows each quota group's figures.
    private let quotaGroupsDirectory: String
    /// When ``usage(group:atMostStale:)`` last committed the pool.
    private let lastUsageCommit = Mutex<ContinuousClock.Instant?>(nil)

    /// The pool's image when AgentBox makes its own.
    public static func imagePath(dataDirectory: URL) -> URL { dataDirectory.appendingPathComponent("pool.img") }

    /// The default size of a new image: the smaller of 64 GiB and half the free space where the image lives, so
    /// that a full pool leaves the host (and the server's database beside it) room to work.
    public static func defaultSize(dataDirectory: URL) -> Int64 {
        var info = statvfs()
        guard statvfs(dataDirectory.path, &info) == 0 else { return 64 << 30 }
        let free = Int64(info.f_bavail) * Int64(info.f_frsize)
        return min(64 << 30, free / 2)
    }

    private init(mountPoint: URL, quotaMode: QuotaMode, sizeBytes: Int64, ownsMount: Bool, rootFD: Int32, quotaGroupsDirectory: String) {
        self.mountPoint = mountPoint
        self.quotaMode = quotaMode
        self.sizeBytes = sizeBytes
        self.ownsMount = ownsMount
        self.root = Mutex(rootFD)
        self.quotaGroupsDirectory = quotaGroupsDirectory
    }

    deinit {
        let fd = root.withLock { $0 }
        if fd >= 0 { close(fd) }
    }

    // MARK: Opening

    /// Finds the pool of `dataDirectory` or makes it (an image of `sizeBytes`, default ``defaultSize(dataDirectory:)``),
    /// mounts it when it is not, and turns quotas on. Throws `unsupported` with the reason when this host cannot
    /// have one: not root, or, for a pool that must be made, no loop devices or no `mkfs.btrfs`, or a kernel without
    /// btrfs (`ENODEV` at the mount). Any other error is a failure of a host that can; a pool already mounted (an
    /// administrator's btrfs, or one left by a killed server) needs neither loop devices nor `mkfs.btrfs`.
    public static func open(dataDirectory: URL, sizeBytes: Int64?, logger: Logger) throws -> DiskPool {
        guard getuid() == 0 else { throw AgentBoxError(.unsupported, "not running as root (a disk pool is a mount)") }
        let image = imagePath(dataDirectory: dataDirectory)
        try makeDirectory(dataDirectory.appendingPathComponent("pool").path, mode: 0o711)
        // As the mount table names it: without symlinks.
        let mountPoint = dataDirectory.appendingPathComponent("pool", isDirectory: true).resolvingSymlinksInPath()
        // A pool of AgentBox's own image is AgentBox's to unmount, also when an earlier server (killed) left it mounted.
        let ownsMount = FileManager.default.fileExists(atPath: image.path) || !isBtrfsMountRoot(mountPoint.path)
        // An image made by this call holds nothing: whatever fails before the pool is handed out removes it, so that no
        // empty image is left for the next start to refuse to go on without.
        var made = false
        if !isBtrfsMountRoot(mountPoint.path) {
            if !FileManager.default.fileExists(atPath: image.path) {
                guard FileManager.default.fileExists(atPath: "/dev/loop-control") else {
                    throw AgentBoxError(.unsupported, "no loop devices (/dev/loop-control)")
                }
                try makeImage(image, sizeBytes: sizeBytes, dataDirectory: dataDirectory, logger: logger)
                made = true
            }
            do { try mountImage(image, at: mountPoint.path) } catch {
                if made { unlink(image.path) }
                throw error
            }
            logger.debug("disk pool mounted", metadata: ["image": "\(image.path)"])
        }
        let fd = Glibc.open(mountPoint.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open \(mountPoint.path)") }
        do {
            var fsid = [UInt8](repeating: 0, count: 16)
            guard ab_btrfs_fsid(fd, &fsid) == 0 else { throw failure("read the pool's file system id") }
            let quotaGroups = "/sys/fs/btrfs/\(uuidString(fsid))/qgroups"
            let mode = try enableQuotas(fd, quotaGroups: quotaGroups)
            for name in ["workspaces", "snapshots", "images"] {
                try makeDirectory(mountPoint.appendingPathComponent(name).path, mode: 0o711)
            }
            try makeDirectory(mountPoint.appendingPathComponent("system").path, mode: 0o755)
            var info = statvfs()
            fstatvfs(fd, &info)
            return DiskPool(
                mountPoint: mountPoint, quotaMode: mode, sizeBytes: Int64(info.f_blocks) * Int64(info.f_frsize),
                ownsMount: ownsMount, rootFD: fd, quotaGroupsDirectory: quotaGroups)
        } catch {
            close(fd)
            if ownsMount { umount2(mountPoint.path, Int32(MNT_DETACH)) }
            if made { unlink(image.path) }
            throw error
        }
    }

    /// Unmounts the pool if AgentBox mounted it; the loop device detaches itself once the file system lets go of
    /// it. Call when nothing uses the pool any more (every sandbox stopped): a file still open keeps the file system
    /// alive, detached, until it is closed.
    public func unmount() {
        let fd = root.withLock { fd in
            defer { fd = -1 }
            return fd
        }
        guard fd >= 0 else { return }
        _ = ab_syncfs(fd)
        close(fd)
        guard ownsMount else { return }
        if umount2(mountPoint.path, 0) != 0 { umount2(mountPoint.path, Int32(MNT_DETACH)) }
    }

    /// Whether `path` is where a btrfs is mounted, according to this process's mount table.
    static func isBtrfsMountRoot(_ path: String) -> Bool {
        guard let table = KernelFile.read("/proc/self/mountinfo") else { return false }
        let escaped = path.replacingOccurrences(of: "\\", with: "\\134").replacingOccurrences(of: " ", with: "\\040")
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[4] == escaped, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { return false }
            return fields[dash + 1] == "btrfs"
        }
    }

    /// How many times mkfs.btrfs is run when its check of the mount table fails.
    static let mkfsAttempts = 8

    private static var mkfsPath: String? {
        ["/usr/sbin/mkfs.btrfs", "/sbin/mkfs.btrfs", "/usr/bin/mkfs.btrfs"].first(where: FileManager.default.isExecutableFile)
    }

    /// Makes the image of `sizeBytes`, or by default of ``defaultSize(dataDirectory:)``.
    private static func makeImage(_ image: URL, sizeBytes asked: Int64?, dataDirectory: URL, logger: Logger) throws {
        let sizeBytes = asked ?? defaultSize(dataDirectory: dataDirectory)
        // mkfs.btrfs wants at least ~114 MiB for its default profiles.
        guard sizeBytes >= 256 << 20 else {
            if asked == nil {
                throw AgentBoxError(
                    .unavailable,
                    "the disk of \(dataDirectory.path) is nearly full: half its free space, \(sizeBytes >> 20) MiB, is too little for a disk pool (at least 256 MiB; --disk-pool-size sets it)")
            }
            throw AgentBoxError(.invalidArgument, "the disk pool must be at least 256 MiB, not \(sizeBytes >> 20) MiB")
        }
        guard let mkfs = mkfsPath else { throw AgentBoxError(.unsupported, "mkfs.btrfs is not installed (apt-get install btrfs-progs)") }
        let partial = image.path + ".partial"
        unlink(partial)
        let fd = Glibc.open(partial, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("create \(partial)") }
        let sized = ftruncate(fd, off_t(sizeBytes)) == 0  // sparse: blocks are taken as the pool fills
        close(fd)
        guard sized else {
            unlink(partial)
            throw failure("size \(partial)")
        }
        // Once, when the pool is made; never per request. mkfs.btrfs first checks that the file is not mounted, through
        // every loop device in the mount table: one detached meanwhile (another server's pool unmounted) fails that
        // check with ENXIO ("cannot check mount status"). Such a failure is asked again, a few times.
        var attempt = 1
        while true {
            let (status, stderr) = try HostCommand.run(mkfs, ["-q", "-f", "--nodiscard", "-L", "agentbox-pool", partial])
            let message = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            if status == 0 { break }
            guard message.contains("mount status"), attempt < Self.mkfsAttempts else {
                unlink(partial)
                throw AgentBoxError(.internalError, "mkfs.btrfs failed: \(message)")
            }
            logger.warning("mkfs.btrfs could not check the mount table; trying again", metadata: ["attempt": "\(attempt)", "error": "\(message)"])
            usleep(UInt32(50_000 * attempt))
            attempt += 1
        }
        guard rename(partial, image.path) == 0 else { throw failure("rename \(partial)") }
        logger.info("disk pool created", metadata: ["image": "\(image.path)", "size.mib": "\(sizeBytes >> 20)"])
    }

    /// The loop device that already serves `image`, if one does: the file system of a pool unmounted while a file
    /// of it was still open lives on, and a second device of the same image would be a second, diverging copy.
    static func loopDevice(serving image: URL) -> String? {
        let target = image.resolvingSymlinksInPath().path
        guard let devices = try? FileManager.default.contentsOfDirectory(atPath: "/sys/block") else { return nil }
        for device in devices where device.hasPrefix("loop") {
            guard let backing = KernelFile.read("/sys/block/\(device)/loop/backing_file") else { continue }
            if backing.trimmingCharacters(in: .newlines) == target { return "/dev/\(device)" }
        }
        return nil
    }

    private static func mountImage(_ image: URL, at mountPoint: String) throws {
        // nosuid, nodev: what a workspace leaves in its files never elevates anything on the host.
        let flags = UInt(MS_NOSUID) | UInt(MS_NODEV) | UInt(MS_NOATIME)
        if let device = loopDevice(serving: image) {
            // A server killed with its sandboxes still running leaves the pool's file system alive until their mount
            // namespaces are gone (their supervisors exit once they see the control socket close); until then the
            // device is busy. Start-up waits for that, bounded, rather than starting without the workspaces' files.
            var waited = 0
            while mount(device, mountPoint, "btrfs", flags, nil) != 0 {
                guard errno == EBUSY, waited < 200 else { throw failure("mount the disk pool \(device) at \(mountPoint)") }
                // The file system may be mounted under another name of the same place (a path through a symlink):
                // then it is the pool, alive; bind it here.
                if let existing = Self.mountedRoot(of: device), mount(existing, mountPoint, nil, UInt(MS_BIND), nil) == 0 { return }
                usleep(50_000)
                waited += 1
            }
            return
        }
        let backing = Glibc.open(image.path, O_RDWR | O_CLOEXEC)
        guard backing >= 0 else { throw failure("open \(image.path)") }
        defer { close(backing) }
        var number: Int32 = 0
        let loop = ab_loop_attach(backing, &number)
        guard loop >= 0 else { throw failure("attach \(image.path) to a loop device") }
        // The device detaches itself when this descriptor closes, unless the mount holds it by then.
        defer { close(loop) }
        guard mount("/dev/loop\(number)", mountPoint, "btrfs", flags, nil) == 0 else {
            if errno == ENODEV { throw AgentBoxError(.unsupported, "the kernel has no btrfs") }
            throw failure("mount the disk pool /dev/loop\(number) at \(mountPoint) (is btrfs in this kernel?)")
        }
    }

    /// Where this process's mount table has the root of the btrfs on `device` mounted, if anywhere.
    private static func mountedRoot(of device: String) -> String? {
        guard let table = KernelFile.read("/proc/self/mountinfo") else { return nil }
        for line in table.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[3] == "/", let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count,
                fields[dash + 1] == "btrfs", fields[dash + 2] == device
            else { continue }
            return String(fields[4]).replacingOccurrences(of: "\\040", with: " ").replacingOccurrences(of: "\\134", with: "\\")
        }
        return nil
    }

    /// Turns quotas on (simple ones where the kernel has them) unless they are; returns the mode in force.
    private static func enableQuotas(_ fd: Int32, quotaGroups: String) throws -> QuotaMode {
        if let mode = currentQuotaMode(quotaGroups) { return mode }
        if ab_btrfs_quota_enable(fd, 1) != 0 {
            guard errno == EINVAL || errno == EOPNOTSUPP else { throw failure("enable simple quotas on the disk pool") }
            guard ab_btrfs_quota_enable(fd, 0) == 0 else { throw failure("enable quotas on the disk pool") }
        }
        return currentQuotaMode(quotaGroups) ?? .full
    }

    private static func currentQuotaMode(_ quotaGroups: String) -> QuotaMode? {
        guard (try? String(contentsOfFile: quotaGroups + "/enabled", encoding: .utf8))?.hasPrefix("1") == true else { return nil }
        let mode = (try? String(contentsOfFile: quotaGroups + "/mode", encoding: .utf8)) ?? ""
        return mode.hasPrefix("squota") ? .simple : .full
    }

    // MARK: Workspaces

    /// The subvolume of workspace `id` (it holds `workspace/` and `home/`).
    public func workspaceVolume(id: String) -> URL {
        mountPoint.appendingPathComponent("workspaces", isDirectory: true).appendingPathComponent(id, isDirectory: true)
    }

    /// The read-only subvolume of snapshot `id` (a snapshot of a workspace's subvolume).
    public func snapshotVolume(id: String) -> URL {
        mountPoint.appendingPathComponent("snapshots", isDirectory: true).appendingPathComponent(id, isDirectory: true)
    }

    /// What every sandbox mounts besides its own files: its `/etc` and the installed agents.
    public var systemDirectory: URL { mountPoint.appendingPathComponent("system", isDirectory: true) }

    /// Whether workspace `id`'s files live in the pool.
    public func holdsWorkspace(id: String) -> Bool { FileManager.default.fileExists(atPath: workspaceVolume(id: id).path) }

    /// Whether snapshot `id` is a subvolume of the pool.
    public func holdsSnapshot(id: String) -> Bool { FileManager.default.fileExists(atPath: snapshotVolume(id: id).path) }

    /// Creates workspace `id`'s subvolume with empty `workspace/` and `home/` owned by `owner`, in the new quota
    /// group of `group` (the workspace's sandbox number), limited to `limitBytes` (`nil`: no limit).
    public func createWorkspace(id: String, group: Int, limitBytes: Int64?, owner: UInt32?) throws {
        let qgroup = Self.groupID(group)
        try makeGroup(qgroup, limitBytes: limitBytes)
        let parent = try openDirectory("workspaces")
        defer { close(parent) }
        guard ab_btrfs_subvolume_create(parent, id) == 0 else { throw Self.failure("create the subvolume of workspace \(id)") }
        do {
            try join(workspaceVolume(id: id).path, group: qgroup)
            try Self.prepare(workspaceVolume(id: id).path, owner: owner)
        } catch {
            try? deleteWorkspace(id: id, group: group)
            throw error
        }
    }

    /// Makes workspace `id` from snapshot `snapshotID`: a writable snapshot of it (no data is copied), in the new
    /// quota group of `group`. Its files are handed to the new workspace's ids by `ownership` (a walk over its inodes).
    func fork(snapshotID: String, into id: String, group: Int, limitBytes: Int64?, ownership: OwnershipWalk?) throws {
        let qgroup = Self.groupID(group)
        try makeGroup(qgroup, limitBytes: limitBytes)
        let source = Glibc.open(snapshotVolume(id: snapshotID).path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard source >= 0 else { throw Self.failure("open snapshot \(snapshotID)") }
        defer { close(source) }
        let parent = try openDirectory("workspaces")
        defer { close(parent) }
        guard ab_btrfs_snapshot_create(source, parent, id, 0) == 0 else { throw Self.failure("fork snapshot \(snapshotID)") }
        do {
            try join(workspaceVolume(id: id).path, group: qgroup)
            try ownership?.apply(to: workspaceVolume(id: id).path)
        } catch {
            try? deleteWorkspace(id: id, group: group)
            throw error
        }
    }

    /// Deletes workspace `id`'s subvolume (and any it made inside) and its quota group.
    public func deleteWorkspace(id: String, group: Int) throws {
        let qgroup = Self.groupID(group)
        // Deleting writes metadata that is charged to the group: a group at its limit could not be emptied.
        _ = ab_btrfs_qgroup_limit(rootFD, qgroup, 0)
        try deleteVolume(workspaceVolume(id: id).path, group: qgroup, what: "workspace \(id)")
        _ = ab_btrfs_qgroup_create(rootFD, qgroup, 0)
    }

    /// Sets the limit of `group`'s quota group (`nil`: none). Takes effect at once, for a running workspace too.
    public func setLimit(group: Int, limitBytes: Int64?) throws {
        guard ab_btrfs_qgroup_limit(rootFD, Self.groupID(group), UInt64(limitBytes ?? 0)) == 0 else {
            throw Self.failure("set the disk limit of quota group 1/\(group)")
        }
    }

    /// The bytes charged to `group`'s quota group: what the workspace wrote that still exists, in its files or
    /// held by its snapshots (with simple quotas), or what it and its snapshots reference (full qgroups).
    /// The figure is the kernel's as of its last transaction commit.
    public func usage(group: Int) -> Int64? {
        let text = KernelFile.read("\(quotaGroupsDirectory)/1_\(group)/referenced")
        return text.flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Commits what was written to the pool, so that ``usage(group:)`` counts it.
    public func commit() {
        _ = ab_syncfs(rootFD)
    }

    /// ``usage(group:)`` at most `staleness` old: commits the pool first when the last commit made here is older,
    /// so that a reader sees what was written a moment ago without a commit per reading. Blocks for the commit.
    public func usage(group: Int, atMostStale staleness: Duration) -> Int64? {
        let now = ContinuousClock.now
        let due = lastUsageCommit.withLock { last -> Bool in
            if let last, now - last < staleness { return false }
            last = now
            return true
        }
        if due { commit() }
        return usage(group: group)
    }

    // MARK: Snapshots

    /// Takes snapshot `snapshotID` of workspace `id`: a read-only subvolume snapshot of its files as of one instant,
    /// in the workspace's quota group. Costs one transaction whatever the workspace holds.
    public func snapshot(workspace id: String, group: Int, as snapshotID: String) throws {
        let source = Glibc.open(workspaceVolume(id: id).path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard source >= 0 else { throw Self.failure("open workspace \(id)") }
        defer { close(source) }
        let parent = try openDirectory("snapshots")
        defer { close(parent) }
        guard ab_btrfs_snapshot_create(source, parent, snapshotID, 1) == 0 else {
            throw Self.failure("snapshot workspace \(id)")
        }
        do {
            try join(snapshotVolume(id: snapshotID).path, group: Self.groupID(group))
        } catch {
            try? deleteSnapshot(id: snapshotID, group: group)
            throw error
        }
    }

    /// Deletes snapshot `id` of the workspace of quota group `group`. What it alone held is freed (and uncharged)
    /// as the kernel's cleaner gets to it.
    public func deleteSnapshot(id: String, group: Int) throws {
        try deleteVolume(snapshotVolume(id: id).path, group: Self.groupID(group), what: "snapshot \(id)")
    }

    // MARK: Images

    /// The subvolume of image `id`: a snapshot of a workspace's subvolume, its ids made canonical.
    public func imageVolume(id: String) -> URL {
        mountPoint.appendingPathComponent("images", isDirectory: true).appendingPathComponent(id, isDirectory: true)
    }

    /// Makes image `imageID` from workspace `id`: a writable snapshot of its subvolume (written once, by the
    /// canonical walk, then only ever mounted read-only). Costs one transaction whatever the workspace holds.
    func snapshot(workspace id: String, asImage imageID: String) throws {
        let source = Glibc.open(workspaceVolume(id: id).path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard source >= 0 else { throw Self.failure("open workspace \(id)") }
        defer { close(source) }
        let parent = try openDirectory("images")
        defer { close(parent) }
        guard ab_btrfs_snapshot_create(source, parent, imageID, 0) == 0 else { throw Self.failure("snapshot workspace \(id)") }
    }

    /// Makes the empty subvolume `images/<name>` (an image fetched from a cluster's blob store is restored into it).
    func createImageVolume(named name: String) throws {
        let parent = try openDirectory("images")
        defer { close(parent) }
        guard ab_btrfs_subvolume_create(parent, name) == 0 else { throw Self.failure("create the subvolume of image \(name)") }
    }

    /// Renames `images/<from>` to `images/<to>` (a restored image put in place in one step).
    func renameImageVolume(_ from: String, to: String) throws {
        let parent = try openDirectory("images")
        defer { close(parent) }
        guard renameat(parent, from, parent, to) == 0 else { throw Self.failure("rename image \(from)") }
    }

    /// Deletes image `id`'s subvolume (and any nested in it).
    func deleteImage(id: String) throws {
        try deleteVolume(imageVolume(id: id).path, group: 0, what: "image \(id)")
    }

    // MARK: Helpers

    /// Level 1, so that it never meets a subvolume's own level-0 group.
    static func groupID(_ group: Int) -> UInt64 { (1 << 48) | UInt64(group) }

    private func makeGroup(_ qgroup: UInt64, limitBytes: Int64?) throws {
        guard ab_btrfs_qgroup_create(rootFD, qgroup, 1) == 0 || errno == EEXIST else {
            throw Self.failure("create quota group 1/\(qgroup & 0xffff_ffff_ffff)")
        }
        guard ab_btrfs_qgroup_limit(rootFD, qgroup, UInt64(limitBytes ?? 0)) == 0 else {
            throw Self.failure("limit quota group 1/\(qgroup & 0xffff_ffff_ffff)")
        }
    }

    /// Puts the subvolume at `path` into `qgroup`. Subvolumes it makes later join by themselves (simple quotas).
    private func join(_ path: String, group qgroup: UInt64) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw Self.failure("open \(path)") }
        defer { close(fd) }
        var subvolume: UInt64 = 0
        guard ab_btrfs_subvolume_id(fd, &subvolume) == 0 else { throw Self.failure("identify \(path)") }
        guard ab_btrfs_qgroup_assign(rootFD, subvolume, qgroup, 1) == 0 || errno == EEXIST else {
            throw Self.failure("add \(path) to its quota group")
        }
    }

    private func deleteVolume(_ path: String, group: UInt64, what: String) throws {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return }
            throw Self.failure("open \(what)")
        }
        var subvolume: UInt64 = 0
        let identified = ab_btrfs_subvolume_id(fd, &subvolume) == 0
        close(fd)
        guard identified else { throw Self.failure("identify \(what)") }
        guard ab_btrfs_subvolume_delete(rootFD, subvolume, group) == 0 else { throw Self.failure("delete \(what)") }
    }

    private func openDirectory(_ name: String) throws -> Int32 {
        let fd = openat(rootFD, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw Self.failure("open \(name) in the disk pool") }
        return fd
    }

    private static func prepare(_ volume: String, owner: UInt32?) throws {
        chmod(volume, 0o711)
        for name in ["workspace", "home"] {
            let path = volume + "/" + name
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw failure("create \(path)") }
            if let owner { chown(path, owner, owner) }
        }
    }

    private static func makeDirectory(_ path: String, mode: mode_t) throws {
        guard mkdir(path, mode) == 0 || errno == EEXIST else { throw failure("create \(path)") }
    }

    private static func uuidString(_ bytes: [UInt8]) -> String {
        let hex = bytes.map { String(format: "%02x", $0) }
        return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]].map { $0.joined() }.joined(separator: "-")
    }

    static func failure(_ what: String) -> AgentBoxError {
        let code = errno
        if code == ENOSPC || code == EDQUOT { return AgentBoxError(.storageFull, "no space left in the disk pool to \(what)") }
        return AgentBoxError(.internalError, "cannot \(what): \(String(cString: strerror(code)))")
    }
}
