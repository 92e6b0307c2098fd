import AgentBoxAPI

/// The network side of an awake workspace: the server's foothold in its network namespace (made on first use, see
/// ``WorkspaceNetwork``), its egress proxy, and the task that publishes the proxy's refusals as events.
///
/// Owned by a ``WorkspaceRuntime`` and touched only on its actor. All of it lives while the workspace is awake:
/// the stop takes each part over, shuts it down and waits for the publisher.
final class WorkspaceNetworkState {
    /// Refusals queued for publishing before more are dropped (a workload hammering a denied host must not grow
    /// the server's memory).
    static let deniedQueueCapacity = 256

    /// The foothold being made or made, while the workspace is awake.
    var foothold: Task<WorkspaceNetwork, any Error>?
    /// The egress proxy inside the awake workspace (Linux sandboxes only: unsandboxed ones share the host's network).
    private(set) var egressProxy: EgressProxy?
    private var denied: AsyncStream<EgressDeniedEvent>.Continuation?
    private var deniedPublisher: Task<Void, Never>?

    init() {}

    /// A bounded channel for the egress proxy's refusals, drained by one task that hands each to `publish`. Returns
    /// what the proxy calls on a refusal; it never waits.
    func openDeniedChannel(
        publish: @escaping @Sendable (EgressDeniedEvent) async -> Void
    ) -> @Sendable (EgressDeniedEvent) -> Void {
        let (stream, continuation) = AsyncStream<EgressDeniedEvent>.makeStream(
            bufferingPolicy: .bufferingOldest(Self.deniedQueueCapacity))
        denied = continuation
        deniedPublisher = Task {
            for await event in stream { await publish(event) }
        }
        return { event in continuation.yield(event) }
    }

    /// Keeps the started egress proxy.
    func proxyStarted(_ proxy: EgressProxy) {
        egressProxy = proxy
    }

    /// Hands over the egress proxy, to be stopped; the workspace goes to sleep.
    func takeProxy() -> EgressProxy? {
        defer { egressProxy = nil }
        return egressProxy
    }

    /// Closes the refusals' channel (the proxy is stopped) and returns its publisher, which ends once it has
    /// published what is queued, for the caller to await.
    func closeDeniedChannel() -> Task<Void, Never>? {
        defer {
            denied = nil
            deniedPublisher = nil
        }
        denied?.finish()
        return deniedPublisher
    }
}
