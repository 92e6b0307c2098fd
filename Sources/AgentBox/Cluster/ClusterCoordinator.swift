import AgentBoxAPI
import AgentBoxStore
import Foundation
import Logging
import Synchronization

/// How a node takes part in a cluster (`serve --node-id --advertise --lease-ms --checkpoint-interval-ms`).
public struct ClusterOptions: Sendable {
    /// Unique in the cluster and stable across the node's restarts.
    public var nodeId: String
    /// The base URL at which other nodes reach this node's API (`http://10.0.0.2:8080`).
    public var advertise: String
    /// How long a lease lasts without renewal: after a node dies, its workspaces move once this has passed.
    public var lease: Duration = .seconds(10)
    /// How often the files of an awake workspace are checkpointed to the blob store; `nil`: only on sleep, on
    /// snapshot and at shutdown.
    public var checkpointInterval: Duration? = .seconds(60)

    public init(nodeId: String, advertise: String, lease: Duration = .seconds(10), checkpointInterval: Duration? = .seconds(60)) {
        self.nodeId = nodeId
        self.advertise = advertise
        self.lease = lease
        self.checkpointInterval = checkpointInterval
    }

    /// A node id: 1–64 of `[A-Za-z0-9._-]`.
    public static func isValidNodeId(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default: false
            }
        }
    }
}

/// Where a workspace is served from, as ``ClusterCoordinator/claim(_:)`` answers.
public enum WorkspacePlacement: Sendable, Equatable {
    /// This node holds the workspace's lease: serve it here.
    case local
    /// Another node, alive, holds it: forward to its address.
    case remote(NodeRecord)
}

/// One node's side of the cluster: its heartbeat, the leases it holds (renewed together, one statement per period),
/// and the decision, per request, of where a workspace is served.
///
/// A workspace is served by the node that holds its lease (``ClusterStore``). A request for a workspace that no
/// live node holds takes the lease here; one that a live node holds is forwarded there; one held by a node that has
/// stopped heart-beating waits until that lease expires (the store's clock decides) and then takes it over — the
/// new epoch fences every write the old owner might still attempt. Leases this node loses (it was paused longer
/// than the lease, say) are reported to ``onLost`` at the next renewal, which stops the workspace here without
/// writing anything.
public final class ClusterCoordinator: Sendable {
    public let store: any ClusterStore
    public let options: ClusterOptions
    let logger: Logger
    let startedAt = Date()

    private struct State {
        /// Leases held, with their epoch and when (on this node's monotonic clock) they were last confirmed.
        var held: [WorkspaceKey: (epoch: Int64, confirmed: ContinuousClock.Instant)] = [:]
        /// The epoch each workspace had when this node last took it over (see ``takenOver(_:)``).
        var takeovers: [WorkspaceKey: Int64] = [:]
        /// Workspaces other nodes serve, as last found, until when that is trusted without asking the store.
        var remote: [WorkspaceKey: (node: NodeRecord, until: ContinuousClock.Instant)] = [:]
        /// Nodes that did not answer a forwarded request, until when they are not tried again.
        var unreachable: [String: ContinuousClock.Instant] = [:]
        var onLost: (@Sendable (WorkspaceKey) async -> Void)?
        /// Requests forwarded to a node, waiting to learn that it fell silent (``waitUntilSilent(_:)``), by node id.
        var silenceWaiters: [String: [UInt64: CheckedContinuation<Void, Never>]] = [:]
        var nextWaiter: UInt64 = 0
        /// Where other nodes reach this one: the configured one, or set once the server listens.
        var advertise: String
    }

    private let state: Mutex<State>
    /// Acquisitions under way, by key, so that a page's many requests make one.
    private let acquisitions = SingleFlight<WorkspacePlacement>()
    /// States of workspaces served here, to record for other nodes: the latest of each, until the writer takes them.
    private let pendingStates = Mutex<[WorkspaceKey: WorkspaceState]>([:])
    /// Wakes the writer of ``pendingStates`` (one wake-up stands for any number of states). Read by one ``run()``.
    private let statesNoted: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    /// Whether a ``run()`` has started the writer already (the stream has one reader).
    private let writerStarted = Mutex(false)

    public init(store: any ClusterStore, options: ClusterOptions, logger: Logger) {
        self.store = store
        self.options = options
        self.logger = logger
        state = Mutex(State(advertise: options.advertise))
        statesNoted = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Notes that workspace `key`, served here, entered `state`: recorded in its lease for other nodes' lists, off the
    /// caller's path and in order (only the latest state of each workspace is written).
    public func noteState(_ key: WorkspaceKey, _ state: WorkspaceState) {
        guard heldEpoch(key) != nil else { return }
        pendingStates.withLock { $0[key] = state }
        statesNoted.continuation.yield()
    }

    /// Records the noted states as they come, until cancelled.
    private func recordStates() async {
        for await _ in statesNoted.stream {
            let batch = pendingStates.withLock { pending in
                defer { pending.removeAll() }
                return pending
            }
            for (key, state) in batch {
                do { try await store.recordState(key: key, state: state) } catch let error as StoreError where error.code == .fenced {
                    // The lease went to another node (or was released): its state is that node's to record.
                } catch let error as StoreError where error.code == .closed {
                    return  // the node is stopping; its leases are released with their states
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("could not record a workspace's state", metadata: ["workspace.key": "\(key)", "error": "\(error)"])
                }
            }
        }
    }

    /// The states other nodes recorded for those of `keys` they serve (live leases only); a workspace with none
    /// recorded is not in the answer.
    public func recordedStates(of keys: [WorkspaceKey]) async throws -> [WorkspaceKey: WorkspaceState] {
        var states: [WorkspaceKey: WorkspaceState] = [:]
        for lease in try await store.liveLeases(keys: keys) where lease.nodeId != store.nodeId {
            if let state = lease.state { states[lease.key] = state }
        }
        return states
    }

    /// Where other nodes reach this one. Empty until known.
    public var advertise: String { state.withLock { $0.advertise } }

    /// Sets where other nodes reach this one (a server that chose its port when it started listening), and
    /// registers the node at once.
    public func setAdvertise(_ address: String) async {
        state.withLock { $0.advertise = address }
        await beat()
    }

    /// Called with each workspace whose lease another node took from this one.
    public func setOnLost(_ handler: @escaping @Sendable (WorkspaceKey) async -> Void) {
        state.withLock { $0.onLost = handler }
    }

    /// A held lease is trusted without asking the store for a third of its length after it was confirmed; the
    /// renewal loop confirms them all every third.
    private var trustWindow: Duration { options.lease / 3 }

    /// Where workspace `key` is served: here (taking or renewing its lease), or on the live node that holds it.
    /// Waits, at most a lease and a few seconds, for the lease of a node that stopped answering to expire.
    public func claim(_ key: WorkspaceKey) async throws -> WorkspacePlacement {
        let now = ContinuousClock.now
        let known = state.withLock { state -> WorkspacePlacement? in
            if let held = state.held[key], now - held.confirmed < trustWindow { return .local }
            if let remote = state.remote[key] {
                if now < remote.until, state.unreachable[remote.node.id] == nil { return .remote(remote.node) }
                state.remote[key] = nil
            }
            return nil
        }
        if let known { return known }
        return try await acquisitions.run(key.rawValue) { try await self.acquire(key) }
    }

    /// The epoch this node holds `key`'s lease with, or `nil`.
    public func heldEpoch(_ key: WorkspaceKey) -> Int64? { state.withLock { $0.held[key]?.epoch } }

    /// Whether this node's hold of `key` began with a takeover it has not yet acknowledged (``acknowledgeTakeover(_:)``):
    /// the workspace's files here, if any, may be older than its last checkpoint.
    func pendingTakeover(_ key: WorkspaceKey) -> Int64? {
        state.withLock { state in
            guard let epoch = state.held[key]?.epoch, state.takeovers[key] != epoch else { return nil }
            return epoch
        }
    }

    func acknowledgeTakeover(_ key: WorkspaceKey, epoch: Int64) {
        state.withLock { $0.takeovers[key] = epoch }
    }

    private func acquire(_ key: WorkspaceKey) async throws -> WorkspacePlacement {
        let giveUp = ContinuousClock.now + options.lease + .seconds(5)
        while true {
            let asked = ContinuousClock.now
            switch try await store.acquireLease(key: key, ttl: options.lease) {
            case .acquired(let lease):
                state.withLock { state in
                    state.held[key] = (lease.epoch, asked)
                    state.remote[key] = nil
                }
                return .local
            case .held(let lease):
                let nodes = try await store.nodes()
                let storeNow = try await store.now()
                if let holder = lease.nodeId, let node = nodes.first(where: { $0.id == holder }), isAlive(node, now: storeNow) {
                    // Trusted for a third of a lease at most (and never past the lease's end): a page's requests
                    // then cost no round trip to the store each.
                    let remaining = Duration.milliseconds(Int64(max(lease.expiresAt.timeIntervalSince(storeNow), 0) * 1000))
                    state.withLock { $0.remote[key] = (node, asked + min(trustWindow, remaining)) }
                    return .remote(node)
                }
                // The holder stopped heart-beating (or left): its lease runs out at `expiresAt`, store time.
                let remaining = lease.expiresAt.timeIntervalSince(storeNow)
                guard ContinuousClock.now + .milliseconds(Int64(max(remaining, 0) * 1000)) < giveUp else {
                    throw AgentBoxError(
                        .unavailable, "workspace '\(key)' is held by node '\(lease.nodeId ?? "?")', which does not answer; try again")
                }
                logger.info(
                    "waiting for the lease of a silent node to expire",
                    metadata: ["workspace.key": "\(key)", "node": "\(lease.nodeId ?? "?")", "remaining.ms": "\(Int(remaining * 1000))"])
                try await Task.sleep(for: .milliseconds(Int64(max(remaining, 0) * 1000) + 20))
            }
        }
    }

    /// A node is alive while its last heartbeat is younger than a lease (it beats three times per lease), and it
    /// has not just failed to answer a forwarded request.
    func isAlive(_ node: NodeRecord, now: Date) -> Bool {
        if node.id == options.nodeId { return true }
        let unreachable = state.withLock { state -> Bool in
            guard let until = state.unreachable[node.id] else { return false }
            if until < .now {
                state.unreachable[node.id] = nil
                return false
            }
            return true
        }
        return !unreachable && now.timeIntervalSince(node.heartbeatAt) < options.lease.seconds
    }

    /// A forwarded request could not reach `node`: it is treated as dead for a lease's length (its workspaces then
    /// wait for their leases to expire and move here).
    public func reportUnreachable(_ node: NodeRecord) {
        logger.warning("node does not answer", metadata: ["node": "\(node.id)", "address": "\(node.address)"])
        state.withLock { state in
            state.unreachable[node.id] = .now + options.lease
            state.remote = state.remote.filter { $0.value.node.id != node.id }
        }
        announceSilence(of: node.id)
    }

    /// Returns once `node` is found silent: it has not heart-beaten for a lease (checked at each of this node's
    /// beats, three per lease, only while someone waits), or a request to it failed (``reportUnreachable(_:)``);
    /// or when the calling task is cancelled. A request forwarded to a node that stopped without closing its
    /// connections (paused, partitioned) would otherwise wait for ever: forwarding races its answer against this.
    public func waitUntilSilent(_ node: NodeRecord) async {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if Task.isCancelled { return true }
                    if let until = state.unreachable[node.id], until > .now { return true }
                    state.silenceWaiters[node.id, default: [:]][id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.silenceWaiters[node.id]?.removeValue(forKey: id) }?.resume()
        }
    }

    /// Resumes everyone waiting for `nodeId` to fall silent.
    private func announceSilence(of nodeId: String) {
        let waiters = state.withLock { $0.silenceWaiters.removeValue(forKey: nodeId) } ?? [:]
        for continuation in waiters.values { continuation.resume() }
    }

    /// At a beat: the nodes someone waits on that have not heart-beaten for a lease are silent.
    private func checkSilence() async {
        let watched = state.withLock { state in Set(state.silenceWaiters.filter { !$0.value.isEmpty }.keys) }
        guard !watched.isEmpty else { return }
        do {
            let nodes = try await store.nodes()
            let now = try await store.now()
            for node in nodes where watched.contains(node.id) && now.timeIntervalSince(node.heartbeatAt) >= options.lease.seconds {
                logger.warning("node is silent", metadata: ["node": "\(node.id)", "lastSeenAt": "\(node.heartbeatAt)"])
                announceSilence(of: node.id)
            }
            // A node that left the table (removed) is silent too.
            for id in watched where !nodes.contains(where: { $0.id == id }) { announceSilence(of: id) }
        } catch {
            logger.error("could not check other nodes' heartbeats", metadata: ["error": "\(error)"])
        }
    }

    /// Gives up `key`'s lease (its workspace was destroyed, or this node stops serving it).
    public func release(_ key: WorkspaceKey) async {
        state.withLock { state in
            state.held[key] = nil
            state.takeovers[key] = nil
        }
        do { try await store.releaseLease(key: key) } catch {
            logger.warning("could not release a lease", metadata: ["workspace.key": "\(key)", "error": "\(error)"])
        }
    }

    /// Forgets `key`'s lease without writing (it was lost).
    func forget(_ key: WorkspaceKey) {
        state.withLock { state in
            state.held[key] = nil
            state.takeovers[key] = nil
        }
    }

    /// The keys this node holds.
    public var heldKeys: [WorkspaceKey] { state.withLock { Array($0.held.keys) } }

    /// Heart-beats and renews this node's leases three times per lease until cancelled; reports lost leases.
    public func run() async {
        let firstRun = writerStarted.withLock { started in
            defer { started = true }
            return !started
        }
        await withTaskGroup(of: Void.self) { group in
            if firstRun { group.addTask { await self.recordStates() } }
            while !Task.isCancelled {
                await beat()
                try? await Task.sleep(for: options.lease / 3)
            }
            if firstRun { statesNoted.continuation.finish() }
        }
    }

    /// One heartbeat and one renewal of every held lease.
    func beat() async {
        let asked = ContinuousClock.now
        let address = advertise
        // Not registered before other nodes can reach it (the server has not listened yet).
        guard !address.isEmpty else { return }
        do {
            try await store.heartbeat(address: address, startedAt: startedAt)
            let lost = try await store.renewLeases(ttl: options.lease)
            let handler = state.withLock { state in
                for key in state.held.keys { state.held[key]?.confirmed = asked }
                for key in lost {
                    state.held[key] = nil
                    state.takeovers[key] = nil
                }
                return state.onLost
            }
            for key in lost {
                logger.warning("lost the lease of a workspace to another node", metadata: ["workspace.key": "\(key)"])
                await handler?(key)
            }
        } catch {
            logger.error("cluster heartbeat failed", metadata: ["error": "\(error)"])
        }
        await checkSilence()
    }

    /// The cluster as `GET /v1/cluster` shows it.
    public func status() async throws -> ClusterStatus {
        let nodes = try await store.nodes()
        let leases = try await store.liveLeases()
        let now = try await store.now()
        var byNode: [String: [String]] = [:]
        for lease in leases { if let node = lease.nodeId { byNode[node, default: []].append(lease.key.rawValue) } }
        return ClusterStatus(
            node: options.nodeId,
            nodes: nodes.map { node in
                ClusterNode(
                    id: node.id, advertise: node.address, state: isAlive(node, now: now) ? "up" : "down", lastSeenAt: node.heartbeatAt,
                    startedAt: node.startedAt, workspaces: (byNode[node.id] ?? []).sorted())
            })
    }
}

extension Duration {
    /// The duration in seconds, as a floating-point number.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
