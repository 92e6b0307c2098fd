import Foundation

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
    ]

    /// The top-level host entries that are symlinks into /usr or directories to mount read-only.
    static let topLevel = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]

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
            "passwd": "root:x:0:0:root:/root:/usr/sbin/nologin\n\(user):x:\(uid):\(uid):AgentBox agent:\(home):\(shell)\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "group": "root:x:0:\n\(user):x:\(uid):\nnogroup:x:65534:\n",
            "hosts": "127.0.0.1\tlocalhost workspace\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            "hostname": "workspace\n",
            "nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n",
            "resolv.conf": "",
            "os-release": "NAME=\"AgentBox workspace\"\nID=agentbox\n",
        ]
        for (name, content) in generated {
            let url = directory.appendingPathComponent(name)
            if (try? String(contentsOf: url, encoding: .utf8)) != content {
                try content.write(to: url, atomically: true, encoding: .utf8)
            }
            chmod(url.path, 0o644)
        }
        for name in passthroughEtc {
            let copy = directory.appendingPathComponent(name)
            if (try? files.attributesOfItem(atPath: copy.path)) != nil { try files.removeItem(at: copy) }
            try copyPublic(from: "/etc/\(name)", to: copy.path)
        }
        chmod(directory.path, 0o755)
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
    static func bwrapArguments(workspaceFD: Int32, homeFD: Int32, etcFD: Int32, initFD: Int32) -> [String] {
        var arguments = ["--ro-bind", "/usr", "/usr"]
        let files = FileManager.default
        for name in topLevel {
            let path = "/\(name)"
            if let target = try? files.destinationOfSymbolicLink(atPath: path) {
                arguments += ["--symlink", target, path]
            } else {
                var isDirectory: ObjCBool = false
                if files.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                    arguments += ["--ro-bind", path, path]
                }
            }
        }
        arguments += ["--ro-bind-fd", String(etcFD), "/etc"]
        arguments += [
            "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--dir", "/var", "--tmpfs", "/var/tmp", "--tmpfs", "/run",
            "--bind-fd", String(workspaceFD), workspace,
            "--bind-fd", String(homeFD), home,
            "--ro-bind-fd", String(initFD), "/.agentbox/init",
            "--chdir", workspace,
        ]
        return arguments
    }

    static func baseEnvironment(home: String) -> [String: String] {
        [
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": home, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8",
            "SHELL": FileManager.default.fileExists(atPath: "/bin/bash") ? "/bin/bash" : "/bin/sh",
        ]
    }
}
