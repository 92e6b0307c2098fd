import AgentBoxAPI
import CoreMetrics
import class Prometheus.PrometheusCollectorRegistry
import struct Prometheus.PrometheusMetricsFactory
import Synchronization

/// The server-wide metrics of an AgentBox: swift-metrics handles made once from one `MetricsFactory`, which the
/// library updates where things happen (a boot, an exec, an egress decision) and ``WorkspaceManager`` refreshes the
/// gauges of before a scrape (``WorkspaceManager/refreshMetrics()``).
///
/// By default the factory is a Prometheus one over a registry of this value's own (``registry``), so that every
/// manager, and every server built over one, has its own figures and no process-wide `MetricsSystem.bootstrap` is
/// needed (tests build many servers in one process). An embedder with its own backend passes its factory instead:
///
/// ```swift
/// var configuration = AgentBoxConfiguration(dataDirectory: dir)
/// configuration.metrics = AgentBoxMetrics(factory: myStatsDFactory)   // or keep the default, and scrape
/// print(configuration.metrics.registry!.emitToString())             // Prometheus text
/// ```
///
/// Names follow Prometheus conventions (`agentbox_…`, counters end in `_total`, durations are `_seconds`
/// histograms). No label ever holds a workspace key, a path or an id: every label's values are a small fixed set,
/// so the number of series stays bounded whatever the workload.
public final class AgentBoxMetrics: Sendable {
    /// The factory every handle was made from.
    public let factory: any MetricsFactory
    /// The Prometheus registry behind ``factory`` when it is the default one; `nil` for an embedder's factory.
    public let registry: PrometheusCollectorRegistry?

    // MARK: Workspaces

    /// `agentbox_workspaces{state}`: workspaces by state (set by ``WorkspaceManager/refreshMetrics()``).
    let workspacesByState: [WorkspaceState: Gauge]
    /// `agentbox_workspace_boots_total{outcome="ok"|"error"|"refused"}`; refused: the server was at its most awake
    /// workspaces, each in use (see ``AwakeBudget``).
    public let boots: Counter
    public let bootFailures: Counter
    public let bootsRefused: Counter
    /// `agentbox_workspace_boot_duration_seconds`: from the first activity to a running sandbox (successful boots).
    public let bootDuration: CoreMetrics.Timer
    /// `agentbox_workspace_runtimes{residency="resident"|"loaded"}`: workspaces whose runtime the server holds.
    let runtimesResident: Gauge
    let runtimesLoaded: Gauge
    /// `agentbox_parked_sandboxes`: sandboxes of sleeping workspaces kept, parked, for their wakes.
    let parkedSandboxes: Gauge
    /// `agentbox_blank_workspaces`: workspaces made ahead of creates, ready to be taken (see ``BlankWorkspaces``).
    let blankWorkspaces: Gauge

    // MARK: Processes and shells

    /// `agentbox_execs_total`: execs that ran to their end (exit, signal or timeout).
    public let execs: Counter
    /// Checkpoints of workspaces' files written to a cluster's blob store.
    public let checkpoints: Counter
    /// `agentbox_exec_duration_seconds`.
    public let execDuration: CoreMetrics.Timer
    /// `agentbox_processes_started_total`: processes started in sandboxes (execs, spawns, helpers, agents).
    public let processesStarted: Counter
    /// `agentbox_processes`: processes running now.
    public let processes: Meter
    /// `agentbox_shells`: shells open now.
    public let shells: Meter

    // MARK: Sessions and events

    /// `agentbox_sessions{status="idle"|"running"|"closed"}`: stored sessions by status.
    let sessionsByStatus: [SessionStatus: Gauge]
    /// `agentbox_session_events_stored_total`: session events written to the store.
    public let sessionEventsStored: Counter
    /// `agentbox_workspace_events_total`: workspace events published (they are not stored).
    public let workspaceEvents: Counter
    /// `agentbox_sse_subscribers`: Server-Sent Event streams open now (the server counts them).
    public let eventStreams: Meter

    // MARK: Network

    /// `agentbox_preview_requests_total`: HTTP requests and WebSocket upgrades relayed to previews.
    public let previewRequests: Counter
    /// `agentbox_preview_bytes_total{direction="in"|"out"}`: bytes relayed into workspaces' servers and out of them.
    public let previewBytesIn: Counter
    public let previewBytesOut: Counter
    /// `agentbox_egress_allowed_total`: connections and requests the egress proxies let through.
    public let egressAllowed: Counter
    /// `agentbox_egress_denied_total{reason="policy"|"address"}`.
    public let egressDeniedByPolicy: Counter
    public let egressDeniedByAddress: Counter
    /// `agentbox_egress_bytes_total{direction="in"|"out"}`: bytes the egress proxies relayed to workspaces and from them.
    public let egressBytesIn: Counter
    public let egressBytesOut: Counter

    // MARK: Cron

    /// `agentbox_cron_fires_total`: scheduled runs started.
    public let cronFires: Counter
    /// `agentbox_cron_skips_total`: scheduled runs skipped (overlap policy `skip`).
    public let cronSkips: Counter
    /// `agentbox_cron_errors_total`: scheduled runs that failed.
    public let cronErrors: Counter

    /// `agentbox_llm_requests_total{outcome="forwarded"|"refused"}`: model calls through the gateway, sent upstream or
    /// refused by it (key, budget, model).
    public let llmForwarded: Counter
    public let llmRefused: Counter
    /// `agentbox_llm_tokens_total{kind="input"|"output"|"cache_read"|"cache_write"}`: tokens the providers reported.
    public let llmInputTokens: Counter
    public let llmOutputTokens: Counter
    public let llmCacheReadTokens: Counter
    public let llmCacheWriteTokens: Counter

    /// Metrics over a Prometheus registry of their own (``registry``), with histogram buckets that suit each figure.
    public convenience init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = Self.buckets
        self.init(factory: factory, registry: registry)
    }

    /// Metrics made by `factory` (an embedder's backend); there is no ``registry`` to scrape.
    public convenience init(factory: any MetricsFactory) {
        self.init(factory: factory, registry: nil)
    }

    private init(factory: any MetricsFactory, registry: PrometheusCollectorRegistry?) {
        self.factory = factory
        self.registry = registry
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions, factory: factory)
        }
        func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> Gauge {
            Gauge(label: label, dimensions: dimensions, factory: factory)
        }
        func meter(_ label: String) -> Meter { Meter(label: label, factory: factory) }
        func timer(_ label: String) -> CoreMetrics.Timer {
            CoreMetrics.Timer(label: label, preferredDisplayUnit: .seconds, factory: factory)
        }
        workspacesByState = Dictionary(
            uniqueKeysWithValues: WorkspaceState.allCases.map { ($0, gauge("agentbox_workspaces", [("state", $0.rawValue)])) })
        boots = counter("agentbox_workspace_boots_total", [("outcome", "ok")])
        bootFailures = counter("agentbox_workspace_boots_total", [("outcome", "error")])
        bootsRefused = counter("agentbox_workspace_boots_total", [("outcome", "refused")])
        bootDuration = timer("agentbox_workspace_boot_duration_seconds")
        runtimesResident = gauge("agentbox_workspace_runtimes", [("residency", "resident")])
        runtimesLoaded = gauge("agentbox_workspace_runtimes", [("residency", "loaded")])
        parkedSandboxes = gauge("agentbox_parked_sandboxes", [])
        blankWorkspaces = gauge("agentbox_blank_workspaces", [])
        execs = counter("agentbox_execs_total")
        checkpoints = counter("agentbox_checkpoints_total")
        execDuration = timer("agentbox_exec_duration_seconds")
        processesStarted = counter("agentbox_processes_started_total")
        processes = meter("agentbox_processes")
        shells = meter("agentbox_shells")
        sessionsByStatus = Dictionary(
            uniqueKeysWithValues: [SessionStatus.idle, .running, .closed].map { ($0, gauge("agentbox_sessions", [("status", $0.rawValue)])) })
        sessionEventsStored = counter("agentbox_session_events_stored_total")
        workspaceEvents = counter("agentbox_workspace_events_total")
        eventStreams = meter("agentbox_sse_subscribers")
        previewRequests = counter("agentbox_preview_requests_total")
        previewBytesIn = counter("agentbox_preview_bytes_total", [("direction", "in")])
        previewBytesOut = counter("agentbox_preview_bytes_total", [("direction", "out")])
        egressAllowed = counter("agentbox_egress_allowed_total")
        egressDeniedByPolicy = counter("agentbox_egress_denied_total", [("reason", "policy")])
        egressDeniedByAddress = counter("agentbox_egress_denied_total", [("reason", "address")])
        egressBytesIn = counter("agentbox_egress_bytes_total", [("direction", "in")])
        egressBytesOut = counter("agentbox_egress_bytes_total", [("direction", "out")])
        cronFires = counter("agentbox_cron_fires_total")
        cronSkips = counter("agentbox_cron_skips_total")
        cronErrors = counter("agentbox_cron_errors_total")
        llmForwarded = counter("agentbox_llm_requests_total", [("outcome", "forwarded")])
        llmRefused = counter("agentbox_llm_requests_total", [("outcome", "refused")])
        llmInputTokens = counter("agentbox_llm_tokens_total", [("kind", "input")])
        llmOutputTokens = counter("agentbox_llm_tokens_total", [("kind", "output")])
        llmCacheReadTokens = counter("agentbox_llm_tokens_total", [("kind", "cache_read")])
        llmCacheWriteTokens = counter("agentbox_llm_tokens_total", [("kind", "cache_write")])
    }

    /// The histogram buckets of the default registry, by metric: each spans what its figure really takes.
    static let buckets: [String: [Duration]] = [
        "agentbox_store_operation_duration_seconds": [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100), .seconds(1),
        ],
        "agentbox_http_request_duration_seconds": [
            .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10), .seconds(60),
        ],
        "agentbox_workspace_boot_duration_seconds": [
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
        ],
        "agentbox_exec_duration_seconds": [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(5), .seconds(30), .seconds(120), .seconds(600),
        ],
    ]

    /// Sets the gauges that are read rather than counted: workspaces by state, resident runtimes, sessions by status,
    /// parked sandboxes, blank workspaces.
    func setGauges(
        workspaces: [WorkspaceState: Int], runtimes: (resident: Int, loaded: Int), sessions: [SessionStatus: Int], parked: Int = 0,
        blanks: Int = 0
    ) {
        for (state, gauge) in workspacesByState { gauge.record(workspaces[state] ?? 0) }
        runtimesResident.record(runtimes.resident)
        runtimesLoaded.record(runtimes.loaded)
        parkedSandboxes.record(parked)
        blankWorkspaces.record(blanks)
        for (status, gauge) in sessionsByStatus { gauge.record(sessions[status] ?? 0) }
    }
}

extension CoreMetrics.Timer {
    /// Records `duration`.
    public func record(elapsed duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
