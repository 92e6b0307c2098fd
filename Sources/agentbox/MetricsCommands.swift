import AgentBox
import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation
import UnixSignals

/// `agentbox metrics KEY`: what one workspace uses now; `agentbox metrics --server`: the server's Prometheus text.
struct MetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics", abstract: "Show a workspace's resource figures, or the server's Prometheus metrics.",
        discussion: """
            A workspace's figures are of its current boot (CPU time, memory, tasks, network bytes through its egress \
            proxy, previews and fetches) and its disk usage; asking never boots it (a sleeping workspace shows 0 for \
            the live figures).
            Examples:
              agentbox metrics demo
              agentbox metrics demo --json
              agentbox metrics --server | grep '^agentbox_workspaces'
            """)
    @OptionGroup var client: ClientOptions
    @Argument(help: "The workspace key.") var key: String?
    @Flag(help: "Print the server's metrics in Prometheus' text format instead.") var server = false
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        if server == (key != nil) { throw ValidationError("name a workspace key, or pass --server (not both)") }
    }

    func run() async throws {
        try await runClientCall {
            let api = try client.makeClient()
            if server {
                print(try await api.serverMetrics(), terminator: "")
                return
            }
            let metrics = try await api.workspaceMetrics(key!)
            if json { return try printJSON(metrics) }
            printRows(
                [["STATE", metrics.state.rawValue],
                 ["CPU TIME", String(format: "%.3f s", Double(metrics.cpuUsageMs) / 1000)],
                 ["MEMORY", ByteCount.format(metrics.memoryBytes)],
                 ["MEMORY PEAK", ByteCount.format(metrics.memoryPeakBytes)],
                 ["PIDS", String(metrics.pids)],
                 ["DISK", ByteCount.format(metrics.diskBytes) + (metrics.diskLimitBytes.map { " of " + ByteCount.format($0) } ?? "")],
                 ["NET RX", ByteCount.format(metrics.netRxBytes)],
                 ["NET TX", ByteCount.format(metrics.netTxBytes)],
                 ["SAMPLED", RFC3339.format(metrics.sampledAt)]])
        }
    }
}

/// `agentbox top`: a live table of workspaces with their CPU, memory, tasks and disk, refreshed in place.
struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top", abstract: "Watch workspaces' CPU, memory, processes and disk, refreshed in place.",
        discussion: """
            Shows the awake workspaces (--all: every one; a sleeping one's disk usage costs the server a walk of its \
            files when it has no disk pool). CPU is the percentage of one core over the last interval, from the \
            workspace's CPU time. On a terminal the table is redrawn in place until Ctrl-C, which restores the \
            screen; piped, one table per interval is printed. --once prints one table (after one interval, to \
            measure CPU) and exits.
            Examples:
              agentbox top
              agentbox top --interval 5s --all
              agentbox top --once --interval 500ms
            """)
    @OptionGroup var client: ClientOptions
    @Option(help: "How often to refresh: 500ms, 2s, 1m.", transform: { text in
        guard let duration = Duration.parse(text), duration >= .milliseconds(100) else {
            throw ValidationError("--interval must be a duration of at least 100ms, such as 2s, not '\(text)'")
        }
        return duration
    })
    var interval: Duration = .seconds(2)
    @Flag(help: "Print one table and exit.") var once = false
    @Flag(help: "Include sleeping workspaces.") var all = false

    func run() async throws {
        try await runClientCall {
            let api = try client.makeClient()
            let screen = TopScreen(interactive: !once && isatty(STDOUT_FILENO) == 1)
            if once {
                let first = try await TopSample.take(api, all: all)
                try await Task.sleep(for: interval)
                let second = try await TopSample.take(api, all: all)
                print(screen.frame(second, previous: first, interval: interval).joined(separator: "\n"))
                return
            }
            screen.enter()
            defer { screen.leave() }
            let loop = Task {
                var previous: TopSample?
                while !Task.isCancelled {
                    let sample = try await TopSample.take(api, all: all)
                    screen.show(screen.frame(sample, previous: previous, interval: interval))
                    previous = sample
                    try await Task.sleep(for: interval)
                }
            }
            let interrupts = Task {
                for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) {
                    loop.cancel()
                    return
                }
            }
            do {
                try await loop.value
            } catch {
                // Ctrl-C ends the loop wherever it is (a request cancelled mid-way included): a clean end.
                guard loop.isCancelled else { throw error }
            }
            interrupts.cancel()
        }
    }
}

/// One reading of every shown workspace's metrics.
struct TopSample: Sendable {
    var workspaces: [Workspace]
    var metrics: [String: WorkspaceMetrics]
    var total: Int

    /// Lists the workspaces and reads the metrics of the awake ones (of all with `all`), eight requests at a time.
    static func take(_ api: AgentBoxClient, all: Bool) async throws -> TopSample {
        let listed = try await api.allWorkspaces()
        let shown = all ? listed : listed.filter { $0.state != .sleeping }
        var metrics: [String: WorkspaceMetrics] = [:]
        try await withThrowingTaskGroup(of: (String, WorkspaceMetrics?).self) { group in
            var pending = shown.map(\.key.rawValue)[...]
            func next() {
                guard let key = pending.popFirst() else { return }
                group.addTask {
                    do {
                        return (key, try await api.workspaceMetrics(key))
                    } catch let error as AgentBoxClientError where error.status == 404 {
                        return (key, nil)  // deleted meanwhile
                    }
                }
            }
            for _ in 0..<8 { next() }
            while let (key, value) = try await group.next() {
                metrics[key] = value
                next()
            }
        }
        return TopSample(workspaces: shown.filter { metrics[$0.key.rawValue] != nil }, metrics: metrics, total: listed.count)
    }
}

/// Draws ``TopCommand``'s table: on a terminal in place (the alternate screen, cursor home, each line cleared to its
/// end), else as successive plain tables.
struct TopScreen: Sendable {
    let interactive: Bool

    /// The lines of one table: a header line, then a row per workspace, busiest first. CPU is `-` without a
    /// previous sample of the same boot.
    func frame(_ sample: TopSample, previous: TopSample?, interval: Duration) -> [String] {
        struct Row {
            var cells: [String]
            var cpu: Double
            var memory: Int64
            var key: String
        }
        var rows: [Row] = sample.workspaces.map { workspace in
            let key = workspace.key.rawValue
            let now = sample.metrics[key]!
            var cpu = -1.0
            if now.state == .running, let before = previous?.metrics[key], before.state == .running, now.cpuUsageMs >= before.cpuUsageMs,
                now.sampledAt > before.sampledAt
            {
                let wall = now.sampledAt.timeIntervalSince(before.sampledAt) * 1000
                cpu = Double(now.cpuUsageMs - before.cpuUsageMs) / wall * 100
            }
            let disk = ByteCount.format(now.diskBytes) + (now.diskLimitBytes.map { "/" + ByteCount.format($0) } ?? "")
            return Row(
                cells: [
                    key, now.state.rawValue, cpu < 0 ? "-" : String(format: "%.1f", cpu), ByteCount.format(now.memoryBytes),
                    ByteCount.format(now.memoryPeakBytes), String(now.pids), disk, ByteCount.format(now.netRxBytes),
                    ByteCount.format(now.netTxBytes),
                ],
                cpu: cpu, memory: now.memoryBytes, key: key)
        }
        rows.sort { ($0.cpu, $0.memory, $1.key) > ($1.cpu, $1.memory, $0.key) }
        let awake = sample.workspaces.count { $0.state != .sleeping }
        let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        let header =
            "agentbox top: \(sample.total) workspaces, \(awake) awake; every \(String(format: "%g", seconds))s at "
            + RFC3339.format(Date())
        let table = alignedRows([["KEY", "STATE", "CPU%", "MEMORY", "PEAK", "PIDS", "DISK", "NET RX", "NET TX"]] + rows.map(\.cells))
        return [header, ""] + table
    }

    /// Switches to the alternate screen and hides the cursor (a terminal only).
    func enter() {
        if interactive { emit("\u{1B}[?1049h\u{1B}[?25l") }
    }

    /// Shows the cursor and leaves the alternate screen, so the terminal is as it was.
    func leave() {
        if interactive { emit("\u{1B}[?25h\u{1B}[?1049l") }
    }

    /// Draws `lines`: over the last table on a terminal (cut to its height), else after it.
    func show(_ lines: [String]) {
        guard interactive else {
            emit(lines.joined(separator: "\n") + "\n\n")
            return
        }
        var size = winsize()
        let height = ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_row > 0 ? Int(size.ws_row) : 24
        let shown = lines.prefix(height - 1)
        emit("\u{1B}[H" + shown.map { $0 + "\u{1B}[K" }.joined(separator: "\r\n") + "\u{1B}[J")
    }

    private func emit(_ text: String) {
        writeStandardOutput(Data(text.utf8))
    }
}

/// Byte counts for people: `512 B`, `1.5 KiB`, `2.0 GiB`.
enum ByteCount {
    static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}
