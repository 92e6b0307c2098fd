import CAgentBoxSandbox
import Foundation
import Synchronization

/// A sandbox started before the server knows which workspace it is for (`agentbox-sandbox-init --prestarted`, see
/// `prestart.c`): its namespaces exist (the user namespace with no id map yet), its PID 1 runs and waits on the *bind
/// socket*. A boot that takes one writes the workspace's id map, moves PID 1 into the workspace's cgroups and sends
/// the bind message (``bind(_:descriptors:)``): the root file system's operations and the detached mounts they attach.
/// PID 1 then builds the root, drops to what a workspace may do and becomes the sandbox's init, and the boot takes
/// over its control socket (``Supervisor/adopt(control:launcherPID:logger:)``).
///
/// One is bound at most once. One that is never bound (the pool let go at shutdown) is killed with its launcher.
public final class PrestartedSandbox: Sendable {
    /// Why a pre-started sandbox could not be bound, before anything was sent to it (it died in the pool, its
    /// namespace could not be mapped, a mount could not be made): the boot starts its sandbox with bwrap instead.
    struct Unusable: Error {
        var reason: String
    }

    /// The launcher: `--prestarted` in the host's PID namespace, the server's child, which waits for PID 1.
    let launcherPID: pid_t
    /// The sandbox's PID 1, by its host pid.
    public let initPID: pid_t
    /// The server's ends: control socket (also the init's stdout and stderr: replies and diagnostics, as a bwrap-started
    /// init's), bind socket.
    let control: Int32, bindSocket: Int32
    /// `/proc/<PID 1>`, opened while PID 1 was known to wait: its files are reached through it, never by a pid that
    /// another process may have by then.
    let procDirectory: Int32
    /// Its cgroups, made with it (named `pool-…`, no limits yet): the launcher joined them before it exec'd, so the
    /// sandbox never runs outside them; a bind sets the workspace's limits (``SandboxCgroups/apply(_:)``).
    let cgroups: SandboxCgroups?
    /// Whether a boot owns it (the first part of its bind message was sent).
    private let taken = Atomic<Bool>(false)
    /// Whether its bind message was sent to its end (or the bind abandoned).
    private let finished = Atomic<Bool>(false)

    private init(
        launcherPID: pid_t, initPID: pid_t, control: Int32, bindSocket: Int32,
        procDirectory: Int32, cgroups: SandboxCgroups?
    ) {
        self.cgroups = cgroups
        self.procDirectory = procDirectory
        self.launcherPID = launcherPID
        self.initPID = initPID
        self.control = control
        self.bindSocket = bindSocket
    }

    /// Starts one and waits (at most `timeout`) until its PID 1 waits for a bind. Blocks the calling thread: call it
    /// off the cooperative pool. Root only.
    static func start(
        initPath: String, stage: String, cgroups version: SandboxCgroups.Version?, timeout: Duration = .seconds(10)
    ) throws -> PrestartedSandbox {
        let cgroups = try version.map {
            try SandboxCgroups.create(id: SandboxCgroups.poolPrefix + UUID().uuidString.lowercased(), version: $0, limits: SandboxLimits())
        }
        do {
            return try start(initPath: initPath, stage: stage, cgroups: cgroups, timeout: timeout)
        } catch {
            if let cgroups { Task { await cgroups.remove() } }
            throw error
        }
    }

    private static func start(initPath: String, stage: String, cgroups: SandboxCgroups?, timeout: Duration) throws -> PrestartedSandbox {
        let stageDirectory = ab_open_path(stage, 1)
        guard stageDirectory >= 0 else { throw SandboxError.errno("open the sandbox stage \(stage)") }
        defer { close(stageDirectory) }
        var control: [Int32] = [-1, -1], bind: [Int32] = [-1, -1]
        let seqpacket = Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, seqpacket, 0, &control) == 0 else { throw SandboxError.errno("socketpair") }
        guard socketpair(AF_UNIX, seqpacket, 0, &bind) == 0 else {
            control.forEach { close($0) }
            throw SandboxError.errno("socketpair")
        }
        let ours = [control[0], bind[0]]
        // Its stdout and stderr are the control socket too (see `Supervisor`).
        let theirs = [control[1], control[1], control[1], bind[1], stageDirectory]
        let launcher: pid_t
        do {
            let procs = try cgroups?.openProcsFiles() ?? []
            defer { procs.forEach { close($0) } }
            launcher = try HostSpawn.spawn(
                executable: initPath, arguments: ["/.agentbox/init", "--prestarted", "--oom-reset"],
                environment: ["PATH": "/usr/bin:/bin"], descriptors: theirs, cgroupProcs: procs)
        } catch {
            (ours + [control[1], bind[1]]).forEach { close($0) }
            throw error
        }
        [control[1], bind[1]].forEach { close($0) }
        func failed(_ what: String) -> SandboxError {
            let said = Self.readAvailable(control[0])
            kill(launcher, SIGKILL)
            var status: Int32 = 0
            while waitpid(launcher, &status, 0) < 0, errno == EINTR {}
            ours.forEach { close($0) }
            return SandboxError(.startFailed, "a pre-started sandbox \(what)\(said.isEmpty ? "" : ": \(said)")")
        }
        // "pid N" from the launcher and "prestarted" from PID 1, in either order.
        var initPID: pid_t = 0
        var waiting = false
        let deadline = ContinuousClock.now + timeout
        while initPID == 0 || !waiting {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw failed("did not start in \(timeout)") }
            var poll = pollfd(fd: bind[0], events: Int16(POLLIN), revents: 0)
            let ready = Glibc.poll(&poll, 1, Int32(left.components.seconds * 1000 + 1))
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = recv(bind[0], &buffer, buffer.count, 0)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw failed("ended before it was ready") }
            let line = String(decoding: buffer[..<count], as: UTF8.self)
            if line.hasPrefix("pid "), let pid = pid_t(line.dropFirst(4)), pid > 0, initPID == 0 {
                initPID = pid
            } else if line == "prestarted", !waiting {
                waiting = true
            } else {
                throw failed("said \(line.debugDescription)")
            }
        }
        let procDirectory = open("/proc/\(initPID)", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard procDirectory >= 0 else { throw failed("has no /proc/\(initPID)") }
        let sandbox = PrestartedSandbox(
            launcherPID: launcher, initPID: initPID, control: control[0],
            bindSocket: bind[0], procDirectory: procDirectory, cgroups: cgroups)
        // The OOM killer spares the launcher and the init; each process the init starts resets itself (--oom-reset).
        for pid in [launcher, initPID] {
            try? "-1000".write(toFile: "/proc/\(pid)/oom_score_adj", atomically: false, encoding: .utf8)
        }
        return sandbox
    }

    /// What the control socket holds now, without waiting (a failed start's last words), at most 1 KiB: its messages,
    /// one per line.
    private static func readAvailable(_ fd: Int32) -> String {
        var said: [String] = []
        var buffer = [UInt8](repeating: 0, count: 1024)
        var total = 0
        while total < buffer.count {
            let count = recv(fd, &buffer, buffer.count - total, Int32(MSG_DONTWAIT))
            guard count > 0 else { break }
            total += count
            said.append(String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return said.filter { !$0.isEmpty }.joined(separator: "\n")
    }

    /// Whether the bind message was sent (from then on the boot owns the sandbox).
    var isBound: Bool { taken.load(ordering: .acquiring) }

    /// Whether PID 1 still waits for its bind (it never writes to the bind socket after "prestarted": a hang-up or
    /// anything to read means it is gone).
    var isWaiting: Bool {
        var poll = pollfd(fd: bindSocket, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&poll, 1, 0) == 0
    }

    /// The namespace's id map, written once (the server is root in the parent namespace): uid and gid alike.
    func writeIDMap(_ map: String) throws {
        for name in ["uid_map", "gid_map"] {
            let fd = openat(procDirectory, name, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw Unusable(reason: "open its \(name): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let written = map.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
            guard written == map.utf8.count else { throw Unusable(reason: "write its \(name): \(String(cString: strerror(errno)))") }
        }
    }

    /// A descriptor of the sandbox's user namespace (close-on-exec; the caller closes it).
    func openUserNamespace() throws -> Int32 {
        let fd = openat(procDirectory, "ns/user", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Unusable(reason: "open its user namespace: \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Sends the whole bind message (fields, each NUL-terminated) with `descriptors` attached; from here on the boot
    /// owns the control socket and the launcher (this value no longer kills or closes them).
    func bind(_ fields: [String], descriptors: [Int32]) throws {
        try send(fields, descriptors: descriptors, more: false)
    }

    /// Sends a part of the bind message; with `more`, the init waits for the next part (at most 8 in all). The first
    /// part makes the boot the sandbox's owner; a part that cannot be sent after it ends the sandbox (``abandon()``).
    func send(_ fields: [String], descriptors: [Int32], more: Bool) throws {
        guard descriptors.count <= Int(AB_BIND_MAX_FDS) else {
            throw SandboxError(.startFailed, "a workspace with more than \(AB_BIND_MAX_FDS) mounts cannot use a pre-started sandbox")
        }
        var message: [UInt8] = []
        for field in fields + (more ? ["continue"] : []) { message += Array(field.utf8) + [0] }
        guard !finished.load(ordering: .acquiring) else { throw SandboxError(.startFailed, "a pre-started sandbox was bound twice") }
        let first = !taken.exchange(true, ordering: .acquiringAndReleasing)
        let sent = descriptors.withUnsafeBufferPointer { fds in
            ab_send_with_many_fds(bindSocket, message, message.count, fds.baseAddress, Int32(fds.count))
        }
        guard sent == 0 else {
            let error = errno
            if first {
                taken.store(false, ordering: .releasing)  // nothing was sent: the deinit kills it and closes everything
            } else {
                abandon()
            }
            throw Unusable(reason: "send the bind message: \(String(cString: strerror(error)))")
        }
        if first { close(procDirectory) }
        if !more {
            finished.store(true, ordering: .releasing)
            close(bindSocket)
        }
    }

    /// Ends a sandbox whose bind was begun and cannot be finished: its init reads the end of the bind socket and exits
    /// (nothing of a workspace ran in it); its launcher is reaped and its cgroups removed, off the caller's thread.
    func abandon() {
        guard taken.load(ordering: .acquiring), !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        [bindSocket, control].forEach { close($0) }
        Self.reapInBackground(launcherPID, cgroups: cgroups)
    }

    /// Waits for `launcher` (killed after 100 ms) and removes `cgroups`, on a thread of its own.
    private static func reapInBackground(_ launcher: pid_t, cgroups: SandboxCgroups?) {
        Thread.detachNewThread {
            var status: Int32 = 0
            var ended = false
            for _ in 0..<100 {
                if waitpid(launcher, &status, WNOHANG) == launcher { ended = true; break }
                usleep(1000)
            }
            if !ended {
                kill(launcher, SIGKILL)
                while waitpid(launcher, &status, 0) < 0, errno == EINTR {}
            }
            Task { await cgroups?.remove() }
        }
    }

    deinit {
        guard !taken.load(ordering: .acquiring) else { return }
        // Never bound: the end of the bind socket ends PID 1, and the launcher, which reaps it, then exits; one that
        // does not within 100 ms is killed (PID 1 dies with it: PR_SET_PDEATHSIG). Then the cgroups go, empty. On a
        // thread of its own: a deinit may run on the cooperative pool, which must not wait.
        [bindSocket, control, procDirectory].forEach { close($0) }
        Self.reapInBackground(launcherPID, cgroups: cgroups)
    }
}
