import Foundation

/// The file system a Linux sandbox sees, apart from the workspace's own directories: the host's `/usr` (and the
/// `/bin`, `/lib*`, `/sbin` that point into it), read-only, and a minimal `/etc` that AgentBox writes itself, with a
/// few host files passed through read-only. Never the host's `/etc/shadow`, `/root`, `/home` or other secrets.
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

    /// Writes the sandbox's /etc into `directory` (idempotent) and returns the passthrough entries that exist on
    /// the host, for which it made mount points.
    static func prepareEtc(in directory: URL) throws -> [String] {
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
        var present: [String] = []
        for name in passthroughEtc {
            var isDirectory: ObjCBool = false
            guard files.fileExists(atPath: "/etc/\(name)", isDirectory: &isDirectory) else { continue }
            let mountPoint = directory.appendingPathComponent(name)
            if isDirectory.boolValue {
                try files.createDirectory(at: mountPoint, withIntermediateDirectories: true)
            } else if !files.fileExists(atPath: mountPoint.path) {
                _ = files.createFile(atPath: mountPoint.path, contents: nil)
            }
            present.append(name)
        }
        chmod(directory.path, 0o755)
        return present
    }

    /// The bwrap arguments that build the root file system (workspace directories and /etc come as descriptors).
    static func bwrapArguments(etcEntries: [String], workspaceFD: Int32, homeFD: Int32, etcFD: Int32, initFD: Int32) -> [String] {
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
        for name in etcEntries { arguments += ["--ro-bind", "/etc/\(name)", "/etc/\(name)"] }
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
