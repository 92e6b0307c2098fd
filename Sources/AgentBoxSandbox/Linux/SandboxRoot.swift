import Foundation
import Synchronization

/// The file system a Linux sandbox sees, apart from the workspace's own directories: the host's `/usr` (and the
/// `/bin`, `/lib*`, `/sbin` that point into it), read-only, and a minimal `/etc` that AgentBox writes itself, with
/// copies of a few public host files. Never the host's `/etc/shadow`, `/root`, `/home` or other secrets.
enum SandboxRoot {
    /// The user processes run as, inside every sandbox.
    static let uid = 1000
    static let user = "agent"
    static let home = "/home/agent"
    static let workspace = "/workspace"

    /// Host files and directories under /etc that programs need and that hold no secrets.
    static let passthroughEtc = [
        "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "ssl", "ca-certificates", "ca-certificates.conf",
        "localtime", "timezone", "mime.types", "bash.bashrc", "profile", "profile.d", "inputrc", "gai.conf",
        "protocols", "services", "magic", "python3", "python3.11", "perl", "vim", "gitconfig",
        // What package managers read: apt's sources and keys, dpkg's configuration, the tools that add users.
        "apt", "dpkg", "debian_version", "adduser.conf", "deluser.conf", "login.defs", "skel", "shells", "default",
        "environment", "pam.conf", "pam.d", "security", "debconf.conf", "ucf.conf", "mailcap", "sensors3.conf",
        "xattr.conf", "npmrc", "nanorc", "matplotlibrc", "logrotate.d", "cron.daily", "systemd", "init.d", "rc0.d", "rc1.d", "rc2.d",
        "rc3.d", "rc4.d", "rc5.d", "rc6.d", "rcS.d", "X11", "fonts", "emacs", "bindresvport.blacklist",
    ]

    /// Host entries under /var that package managers need, copied into the sandbox /var: dpkg's and apt's state (what
    /// is installed, the package lists), so that `apt-get install` in a workspace knows the system it runs on; and
    /// fontconfig's cache of the host's fonts, or each workspace's first program that draws text (Openbox, xterm,
    /// matplotlib) rebuilds it, some 0.3–0.7 s.
    static let passthroughVar = ["lib/dpkg", "lib/apt", "lib/ucf", "lib/pam", "cache/apt", "cache/debconf", "cache/fontconfig"]
    /// The sandbox /etc, made once per state of the host's files it copies and shared by every server of the host
    /// (`AGENTBOX_ETC_CACHE` moves it): a copy per data directory cost each new server, and each test, a few hundred
    /// file copies on the thread that opened it. The stamp names the version of what AgentBox generates and the
    /// inode, size and change time of each host entry it reads; a change to one makes a new copy.
    static func prepareEtc(cache: URL) throws -> URL {
        var text = "v2"
        for name in ["passwd", "group"] + passthroughEtc + ["os-release"] {
            var info = stat()
            if lstat("/etc/\(name)", &info) == 0 {
                text += "|\(name):\(info.st_ino):\(info.st_size):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
            }
        }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: stable across processes, unlike Hasher
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return try cached(in: cache, stamp: String(hash, radix: 16)) { try prepareEtc(in: $0) }
    }

    static var etcCache: String { hostCache("etc", variable: "AGENTBOX_ETC_CACHE") }

    /// Where the sandbox /var is kept, for every server of the host (`AGENTBOX_VAR_CACHE` moves it).
    static var varCache: String { hostCache("var", variable: "AGENTBOX_VAR_CACHE") }

    /// A directory shared by every server of the host: `$variable`, else under /var/cache/agentbox (root) or the
    /// temporary directory.
    static func hostCache(_ name: String, variable: String) -> String {
        ProcessInfo.processInfo.environment[variable]
            ?? (getuid() == 0 ? "/var/cache/agentbox/\(name)" : NSTemporaryDirectory() + "agentbox-\(name)-\(getuid())")
    }

    /// `cache/stamp`, built by `build` into a directory of its own and renamed into place when missing (a server
    /// that loses the race keeps the winner's, which is as good); other stamps' directories are removed once unused for a day.
    static func cached(in cache: URL, stamp: String, build: (URL) throws -> Void) throws -> URL {
        let files = FileManager.default
        let directory = cache.appendingPathComponent(stamp, isDirectory: true)
        if files.fileExists(atPath: directory.path) {
            utimes(directory.path, nil)  // in use: see the pruning below
            hold(directory)
            return directory
        }
        try files.createDirectory(at: cache, withIntermediateDirectories: true)
        chmod(cache.path, 0o755)
        let building = cache.appendingPathComponent(".\(stamp).\(getpid()).\(UInt32.random(in: 0...UInt32.max))")
        defer { try? files.removeItem(at: building) }
        try build(building)
        if rename(building.path, directory.path) != 0, !files.fileExists(atPath: directory.path) {
            throw SandboxError.errno("rename \(building.path)")
        }
        hold(directory)
        // Another server of the host may be of another version (an upgrade under way, two builds compared side by
        // side) and its sandboxes' /etc and /var are its copy: a copy goes only when no running server holds it (each
        // holds a shared lock on its own for its whole life) and none has started with it for a day (servers from
        // before the lock took none).
        let dayAgo = Date().addingTimeInterval(-86_400)
        for old in (try? files.contentsOfDirectory(atPath: cache.path)) ?? [] where old != stamp && !old.hasPrefix(".") {
            let path = cache.appendingPathComponent(old)
            let modified = (try? files.attributesOfItem(atPath: path.path)[.modificationDate] as? Date) ?? .distantPast
            guard modified < dayAgo else { continue }
            let fd = open(path.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { try? files.removeItem(at: path) }
            close(fd)
        }
        return directory
    }

    /// The cache directories this process uses, each open with a shared lock for as long as the process lives.
    private static let held = Mutex<[String: Int32]>([:])

    /// Takes (once per process) a shared lock on `directory`: while it is held, no other server removes it.
    static func hold(_ directory: URL) {
        held.withLock { held in
            guard held[directory.path] == nil else { return }
            let fd = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { return }
            _ = flock(fd, LOCK_SH)
            held[directory.path] = fd
        }
    }
    /// The stage of pre-started sandboxes (see `prestart.c`), made once per host (`AGENTBOX_STAGE` moves it): the
    /// mount points a pre-started sandbox's PID 1 needs before its id map exists, when it may create no file: `proc`,
    /// `dev` with an empty file per device node it binds, `root` (where the workspace's root is built) and `storage`.
    /// Owned by root, read-only to everyone else; the sandbox binds it read-only and drops it at its bind.
    static func prepareStage(in directory: URL = URL(fileURLWithPath: hostCache("stage", variable: "AGENTBOX_STAGE"))) throws -> URL {
        let files = FileManager.default
        for name in ["", "proc", "dev", "root", "storage"] {
            let path = directory.appendingPathComponent(name).path
            if mkdir(path, 0o755) != 0, errno != EEXIST {
                try files.createDirectory(atPath: path, withIntermediateDirectories: true)
            }
        }
        // The sandbox binds what it finds here: only root may have put it there.
        var info = stat()
        guard lstat(directory.path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == 0, info.st_mode & 0o022 == 0 else {
            throw SandboxError(.startFailed, "the sandbox stage \(directory.path) must be a directory of root's that only root may write")
        }
        for node in ["null", "zero", "full", "random", "urandom", "tty"] {
            let fd = open(directory.appendingPathComponent("dev/\(node)").path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o444)
            guard fd >= 0 else { throw SandboxError.errno("make the sandbox stage in \(directory.path)") }
            close(fd)
        }
        return directory
    }

    /// Empty directories every /var has.
    static let emptyVar = ["cache", "lib", "log", "mail", "opt", "spool", "local", "backups", "tmp", "lib/misc"]

    /// What root in a workspace may do, in its own user namespace only (Docker's default set, less what needs the
    /// host: raw sockets, device nodes, chroot, audit).
    static let rootCapabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SETFCAP",
    ]

    /// ``rootCapabilities`` as a mask of capability numbers (linux/capability.h), for a pre-started sandbox's init.
    static let rootCapabilityMask: UInt64 = {
        let numbers = [
            "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6,
            "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10, "CAP_SETFCAP": 31,
        ]
        return rootCapabilities.reduce(0) { $0 | (1 << UInt64(numbers[$1]!)) }
    }()

    /// The top-level host entries that are symlinks into /usr or directories to mount read-only.
    static let topLevel = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]

    /// What each of ``topLevel`` is on this host, read once: a symlink (its target) or a directory (`nil`); missing
    /// ones are left out.
    static let topLevelEntries: [(path: String, symlink: String?)] = topLevel.compactMap { name in
        let path = "/\(name)"
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) { return (path, target) }
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue ? (path, nil) : nil
    }

    /// Writes the sandbox's /etc into `directory`: the generated files, plus a copy of the passthrough entries
    /// that exist on the host, refreshed on every call (the server calls it at start-up).
    ///
    /// A copy, not a bind mount per entry: bwrap pays ~0.15 ms for each mount, and two dozen of them were a third of
    /// a cold start. Only what every user may read is copied (so `/etc/ssl/private` stays behind); symlinks are
    /// copied as symlinks. A change to the host's /etc reaches new sandboxes after the server restarts.
    static func prepareEtc(in directory: URL) throws {
        let files = FileManager.default
        try files.createDirectory(at: directory, withIntermediateDirectories: true)
        let shell = files.fileExists(atPath: "/bin/bash") ? "/bin/bash" : "/bin/sh"
        let generated: [String: String] = [
            "passwd": systemAccounts(host: KernelFile.read("/etc/passwd") ?? "", fields: 7, ours: [
                "root:x:0:0:root:/root:\(shell)", "\(user):x:\(uid):\(uid):AgentBox agent:\(home):\(shell)",
                "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
            ]),
            "group": systemAccounts(host: KernelFile.read("/etc/group") ?? "", fields: 4, ours: [
                "root:x:0:", "\(user):x:\(uid):", "nogroup:x:65534:",
            ]),
            // pip refuses to install outside a virtual environment on Debian (PEP 668): in a workspace, whose system
            // is its own, `pip install` installs system-wide as on a machine of one's own.
            "pip.conf": "[global]\nbreak-system-packages = true\nroot-user-action = ignore\n",
            "hosts": "127.0.0.1\tlocalhost workspace\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            "hostname": "workspace\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n",
            "resolv.conf": "",
        ]
        for (name, content) in generated {
            let url = directory.appendingPathComponent(name)
            if (try? String(contentsOf: url, encoding: .utf8)) != content {
                try content.write(to: url, atomically: true, encoding: .utf8)
            }
            chmod(url.path, 0o644)
        }
        for name in passthroughEtc + ["os-release"] {
            let copy = directory.appendingPathComponent(name)
            if (try? files.attributesOfItem(atPath: copy.path)) != nil { try files.removeItem(at: copy) }
            try copyPublic(from: "/etc/\(name)", to: copy.path)
        }
        chmod(directory.path, 0o755)
    }

    /// The host's system accounts (ids 1–999, named like system users) with `ours` (root, agent, nobody) in their
    /// places: what packages' scripts expect to find (`_apt`, `man`, `www-data`...). No password field is copied.
    static func systemAccounts(host: String, fields: Int, ours: [String]) -> String {
        var lines = ours
        let taken = Set(ours.map { String($0.split(separator: ":", omittingEmptySubsequences: false)[0]) })
        for line in host.split(separator: "\n") {
            var parts = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == fields, let id = Int(parts[2]), id > 0, id < 1000, !taken.contains(parts[0]) else { continue }
            parts[1] = "x"
            if fields == 4 { parts[3] = "" }
            lines.append(parts.joined(separator: ":"))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The sandbox /var (the lower layer of every workspace's /var): the empty directories and a copy of
    /// `passthroughVar`, made once per version of the host's dpkg status (and of this list) under `cache` and shared by every server of
    /// the host (a copy of some 50 MB: per data directory it would cost each test and each new server a second).
    /// Returns the directory; older versions are removed once unused for a day.
    static func prepareVar(cache: URL) throws -> URL {
        var status = stat()
        let source = stat("/var/lib/dpkg/status", &status) == 0 ? "\(status.st_mtim.tv_sec)-\(status.st_mtim.tv_nsec)-\(status.st_size)" : "none"
        // The version of what is copied comes first: a new entry in `passthroughVar` makes a new copy.
        return try cached(in: cache, stamp: "v2-" + source) { building in
            let files = FileManager.default
            try files.createDirectory(at: building, withIntermediateDirectories: true)
            chmod(building.path, 0o755)
            for name in emptyVar {
                let path = building.appendingPathComponent(name).path
                try files.createDirectory(atPath: path, withIntermediateDirectories: true)
                chmod(path, name == "tmp" ? 0o1777 : 0o755)
            }
            for name in passthroughVar {
                let destination = building.appendingPathComponent(name)
                try files.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
                try copyPublic(from: "/var/\(name)", to: destination.path)
            }
        }
    }

    /// Copies `source` to `destination` if every user may read it: directories recursively, symlinks as symlinks,
    /// regular files with their mode; anything else, or anything private, is left out.
    static func copyPublic(from source: String, to destination: String) throws {
        var info = stat()
        guard lstat(source, &info) == 0 else { return }
        let files = FileManager.default
        switch info.st_mode & S_IFMT {
        case S_IFLNK:
            let target = try files.destinationOfSymbolicLink(atPath: source)
            try files.createSymbolicLink(atPath: destination, withDestinationPath: target)
        case S_IFDIR:
            guard info.st_mode & (S_IROTH | S_IXOTH) == (S_IROTH | S_IXOTH) else { return }
            try files.createDirectory(atPath: destination, withIntermediateDirectories: false)
            chmod(destination, 0o755)
            for entry in try files.contentsOfDirectory(atPath: source) {
                try copyPublic(from: source + "/" + entry, to: destination + "/" + entry)
            }
        case S_IFREG:
            guard info.st_mode & S_IROTH != 0, let contents = files.contents(atPath: source) else { return }
            guard files.createFile(atPath: destination, contents: contents) else {
                throw SandboxError(.system, "cannot copy \(source) into the sandbox /etc")
            }
            chmod(destination, info.st_mode & 0o755)
        default:
            return
        }
    }

    /// The bwrap arguments that build the root file system (workspace directories and /etc come as descriptors).
    /// `system` binds the workspace's system layer (`/usr`, `/etc`, `/var`) in place of the read-only host `/usr`
    /// and AgentBox's `/etc`; then root's home is the workspace's home too. `directories` binds the workspace and home
    /// directories by host path instead of by descriptor (when they are reached through an idmapped mount).
    static func bwrapArguments(
        workspaceFD: Int32, homeFD: Int32, etcFD: Int32, initFD: Int32, system: [String]? = nil,
        directories: (workspace: String, home: String)? = nil
    ) -> [String] {
        var arguments = system ?? ["--ro-bind", "/usr", "/usr"]
        for entry in topLevelEntries {
            arguments += entry.symlink.map { ["--symlink", $0, entry.path] } ?? ["--ro-bind", entry.path, entry.path]
        }
        if system == nil { arguments += ["--ro-bind-fd", String(etcFD), "/etc", "--dir", "/var"] }
        arguments += [
            "--proc", "/proc", "--dev", "/dev",
            // World-writable and sticky, as on any Linux: the unprivileged user's programs need them too. /tmp and
            // /run are directories of the root's tmpfs, not file systems of their own: each superblock of a sandbox
            // costs every memory cgroup of the host a shrinker slot (ARCHITECTURE.md, kernel memory per awake workspace).
            "--perms", "1777", "--dir", "/tmp", "--perms", "1777", "--tmpfs", "/var/tmp", "--dir", "/run",
        ]
        if let directories {
            arguments += ["--bind", directories.workspace, workspace, "--bind", directories.home, home]
        } else {
            arguments += ["--bind-fd", String(workspaceFD), workspace, "--bind-fd", String(homeFD), home]
        }
        arguments += [
            "--ro-bind-fd", String(initFD), "/.agentbox/init",
            "--chdir", workspace,
        ]
        if system != nil { arguments += ["--symlink", "home/agent", "/root"] }
        return arguments
    }

    static func baseEnvironment(home: String, user: String = user) -> [String: String] {
        [
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": home, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8",
            "SHELL": FileManager.default.fileExists(atPath: "/bin/bash") ? "/bin/bash" : "/bin/sh",
        ]
    }
}
