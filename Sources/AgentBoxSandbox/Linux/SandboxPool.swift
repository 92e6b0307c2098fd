import CAgentBoxSandbox
import Foundation
import Logging
import NIOPosix
import Synchronization

/// A pool of what sandboxes' boots can take ready-made, of one of two kinds (``Kind``):
/// - **sandboxes**: whole sandboxes started ahead of their workspaces (``PrestartedSandbox``): namespaces, PID 1
///   waiting; a boot binds one to its workspace. Used when the server is root, has cgroups and idmapped storage.
/// - **namespaces**: a network namespace (loopback up) and an IPC namespace that no workspace has used, held by
///   descriptors in the server: a boot's launcher joins both while it is still root, and bwrap then leaves them as
///   they are (no `--unshare-net`, `--unshare-ipc`). Used by the bwrap path otherwise.
/// A boot takes one (``take()``); ``run()`` makes a new one in the background for each one taken.
///
/// An entry is handed out once and closed by the boot that took it: the namespaces live on only in that sandbox's
/// processes and end with them, so no workspace ever gets one that another workspace used. The pool's task waits
/// without polling.
public final class SandboxPool: Sendable {
    /// What the pool keeps.
    public enum Kind: Sendable, Equatable {
        case namespaces
        /// Pre-started sandboxes, whose init is at `initPath`, and whose stage (``SandboxRoot/prepareStage(in:)``) is `stage`.
        case sandboxes(initPath: String, stage: String)
    }

    /// One ready-made entry.
    public enum Entry: Sendable {
        case namespaces(Namespaces)
        case sandbox(PrestartedSandbox)
    }

    /// A network and an IPC namespace, fresh; closed when the value goes.
    public final class Namespaces: Sendable {
        /// The network namespace's descriptor (close-on-exec; owned by this value).
        public let network: Int32
        /// The IPC namespace's descriptor (close-on-exec; owned by this value).
        public let ipc: Int32

        /// Makes both (root only).
        init() throws {
            var network: Int32 = -1
            var ipc: Int32 = -1
            guard ab_namespaces_open(&network, &ipc) == 0 else { throw SandboxError.errno("make a pooled network namespace") }
            self.network = network
            self.ipc = ipc
        }

        /// Descriptors for `ab_spawn`, to join before the launcher drops root.
        var descriptors: [Int32] { [network, ipc] }

        deinit {
            close(network)
            close(ipc)
        }
    }

    private struct State {
        var ready: [Entry] = []
        /// Whether ``run()`` has started (it runs once: a second call returns at once).
        var running = false
    }

    /// How many entries the pool keeps ready.
    public let size: Int
    public let kind: Kind
    private let state = Mutex(State())
    /// Wakes ``run()`` after a take: one pending wake-up at most (a refill makes all that are missing).
    private let wakeUps: AsyncStream<Void>
    private let wakeUp: AsyncStream<Void>.Continuation
    private let logger: Logger

    /// A pool of `size` entries (0: none; every boot makes its own namespaces, as without a pool).
    /// The cgroups each pre-started sandbox is made in (`nil`: none).
    let cgroups: SandboxCgroups.Version?

    public convenience init(size: Int, logger: Logger) {
        self.init(size: size, kind: .namespaces, cgroups: nil, logger: logger)
    }

    init(size: Int, kind: Kind, cgroups: SandboxCgroups.Version?, logger: Logger) {
        self.size = max(0, size)
        self.kind = kind
        self.cgroups = cgroups
        self.logger = logger
        (wakeUps, wakeUp) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// How many entries are ready now.
    public var readyCount: Int { state.withLock { $0.ready.count } }

    /// Takes a ready entry, or `nil` when none is (the boot then makes its own namespaces); asks for a refill.
    public func take() -> Entry? {
        let taken = state.withLock { $0.ready.popLast() }
        if taken != nil { wakeUp.yield() }
        return taken
    }

    /// Takes a ready pre-started sandbox, or `nil` when none is ready (or the pool keeps namespaces); asks for a refill.
    func takeSandbox() -> PrestartedSandbox? {
        guard case .sandboxes = kind, case .sandbox(let sandbox)? = take() else { return nil }
        return sandbox
    }

    /// A pre-started sandbox made for the caller, outside the pool (see ``BubblewrapBackend/parkAhead(_:logger:)``);
    /// `nil` when the pool keeps namespaces.
    func makeSandbox() async throws -> PrestartedSandbox? {
        guard case .sandboxes = kind else { return nil }
        guard case .sandbox(let sandbox) = try await make() else { return nil }
        return sandbox
    }

    /// Puts back an entry that was taken and never used (tests: an entry made unusable while in the pool).
    func putBack(_ entry: Entry) {
        state.withLock { $0.ready.append(entry) }
    }

    /// Fills the pool at once, on the caller's thread (a few milliseconds per entry), for a caller that cannot wait for
    /// ``run()`` to do it: a test's manager, whose first boot must find the pool full.
    public func fillNow() throws {
        while readyCount < size {
            let made = try makeEntry()
            state.withLock { $0.ready.append(made) }
        }
    }

    private func makeEntry() throws -> Entry {
        switch kind {
        case .namespaces: .namespaces(try Namespaces())
        case .sandboxes(let initPath, let stage): .sandbox(try PrestartedSandbox.start(initPath: initPath, stage: stage, cgroups: cgroups))
        }
    }

    /// Makes an entry off the cooperative pool, on NIO's pool for blocking work (as the project's other blocking
    /// calls are): `ab_namespaces_open` makes and joins a thread of its own, whose namespaces it then throws away; a
    /// pre-started sandbox is waited for until its PID 1 is ready.
    private func make() async throws -> Entry {
        try await NIOThreadPool.singleton.runIfActive { try self.makeEntry() }
    }

    /// Fills the pool, then makes a new entry for each one taken, until cancelled; then closes what is left. Making an
    /// entry takes a thread of its own for a moment (see `ab_namespaces_open`). A pool that cannot make entries here
    /// (not root) says so once and stays empty.
    public func run() async {
        guard size > 0 else { return }
        let alreadyRunning = state.withLock { state in
            defer { state.running = true }
            return state.running
        }
        guard !alreadyRunning else { return }
        defer { state.withLock { $0.ready = [] } }
        wakeUp.yield()
        // A pre-start can fail for a while (a loaded host, a full disk): retried after 1 s, then twice as long each time
        // up to a minute, boots starting their own meanwhile. Namespaces that cannot be made (not root) never will be.
        var backoff: Duration = .zero
        for await _ in wakeUps {
            while !Task.isCancelled, readyCount < size {
                do {
                    let made = try await make()
                    state.withLock { $0.ready.append(made) }
                    backoff = .zero
                } catch {
                    guard kind != .namespaces else {
                        logger.warning("the sandbox pool cannot make namespaces: boots make their own", metadata: ["error": "\(error)"])
                        return
                    }
                    if backoff == .zero {
                        logger.warning("the sandbox pool cannot pre-start a sandbox: boots start their own until it can", metadata: ["error": "\(error)"])
                    }
                    backoff = min(max(backoff * 2, .seconds(1)), .seconds(60))
                    do { try await Task.sleep(for: backoff) } catch { return }
                }
            }
            if Task.isCancelled { return }
        }
    }
}
