import AgentBoxAPI
import AgentBoxClient
import ChildProcessSupport
import Foundation
import Testing

@Suite("Metrics end to end", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct MetricsEndToEndTests {
    /// `agentbox top --once`, `agentbox metrics` and the client's metrics methods against the real binary.
    @Test func topAndMetricsAgainstARealServer() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let cli = CLI(server)
            #expect(try await cli("workspaces", "create", "hot").status == 0)
            #expect(try await cli("workspaces", "create", "cold").status == 0)
            // A busy loop: one core's worth of CPU (the default limit is 100% of one core).
            let spawned = try await cli("spawn", "hot", "--", "sh", "-c", "while :; do :; done")
            #expect(spawned.status == 0, "\(spawned)")

            let top = try await cli("top", "--once", "--interval", "700ms")
            #expect(top.status == 0, "\(top)")
            let lines = top.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.contains("2 workspaces, 1 awake") == true, "\(top.stdout)")
            #expect(lines.contains { $0.hasPrefix("KEY") && $0.contains("CPU%") && $0.contains("MEMORY") && $0.contains("DISK") })
            let row = try #require(lines.first { $0.hasPrefix("hot ") }, "\(top.stdout)").split(separator: " ").map(String.init)
            #expect(row[1] == "running")
            let cpu = try #require(Double(row[2]), "\(row)")
            // Busy, within one core; how much of it the loop gets depends on what else the machine runs (the full suite
            // on two cores, with fifty other workspaces' loops, has left it under 1%).
            #expect(cpu > 0 && cpu < 150, "a busy loop limited to one core: \(cpu)%")
            #expect(!lines.contains { $0.hasPrefix("cold ") }, "sleeping workspaces only with --all")
            #expect(!top.stdout.contains("\u{1B}"), "no terminal codes when stdout is not a terminal")

            let all = try await cli("top", "--once", "--all", "--interval", "200ms")
            #expect(all.stdout.split(separator: "\n").contains { $0.hasPrefix("cold ") && $0.contains("sleeping") }, "\(all.stdout)")

            // The loop's CPU time only grows; wait (bounded) for it to pass 200 ms however busy the machine is.
            var metrics: WorkspaceMetrics
            let deadline = ContinuousClock.now + .seconds(60)
            repeat {
                let json = try await cli("metrics", "hot", "--json")
                #expect(json.status == 0, "\(json)")
                metrics = try AgentBoxJSON.makeDecoder().decode(WorkspaceMetrics.self, from: Data(json.stdout.utf8))
                if metrics.cpuUsageMs > 200 { break }
                try await Task.sleep(for: .milliseconds(250))
            } while ContinuousClock.now < deadline
            // The sandbox's init and the loop's shell at least (a bwrap-started sandbox counts bwrap too).
            #expect(metrics.state == .running && metrics.cpuUsageMs > 200 && metrics.pids >= 2 && metrics.memoryBytes > 0, "\(metrics)")
            let table = try await cli("metrics", "cold")
            #expect(table.stdout.contains("STATE") && table.stdout.contains("sleeping") && table.stdout.contains("MEMORY PEAK"), "\(table)")
            let missing = try await cli("metrics", "ghost")
            #expect(missing.status == 1 && missing.stderr.contains("no workspace 'ghost'"), "\(missing)")
            #expect(try await cli("metrics").status != 0, "a key or --server")
            #expect(try await cli("top", "--interval", "1ms").status != 0, "an interval below 100ms is refused")

            let prometheus = try await cli("metrics", "--server")
            #expect(prometheus.stdout.contains(#"agentbox_workspaces{state="running"} 1.0"#), "\(prometheus.stdout.prefix(2000))")
            #expect(prometheus.stdout.contains(#"agentbox_workspaces{state="sleeping"} 1.0"#))

            // The client: usage is typed zeros; an open event stream is an SSE subscriber until it ends.
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            #expect(try await client.workspaceUsage("hot") == WorkspaceUsage())
            #expect(try await client.workspaceMetrics("cold").state == .sleeping)
            let stream = try await client.events("cold")
            #expect(try await client.serverMetrics().contains("agentbox_sse_subscribers 1.0"))
            // Destroying the workspace ends its streams, and the server's count with them.
            #expect(try await cli("workspaces", "delete", "cold").status == 0)
            for try await _ in stream {}
            var subscribers = ""
            for _ in 0..<50 {
                subscribers = try await client.serverMetrics().split(separator: "\n").first { $0.hasPrefix("agentbox_sse_subscribers ") }
                    .map(String.init) ?? ""
                if subscribers == "agentbox_sse_subscribers 0.0" { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(subscribers == "agentbox_sse_subscribers 0.0")
            await server.stop()
        }
    }

    /// `agentbox top` refreshes until SIGINT (Ctrl-C), then exits 0.
    @Test func topRefreshesUntilInterrupted() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            #expect(try await CLI(server)("workspaces", "create", "live").status == 0)
            #expect(try await CLI(server)("workspaces", "wake", "live").status == 0)
            let output = data.appendingPathComponent("top.out")
            _ = FileManager.default.createFile(atPath: output.path, contents: nil)
            let process = ChildProcess()
            process.executableURL = URL(fileURLWithPath: AgentBoxBinary.path)
            process.arguments = ["top", "--interval", "200ms"]
            process.environment = ProcessInfo.processInfo.environment.merging(CLI(server).environment) { $1 }
            process.standardOutput = try FileHandle(forWritingTo: output)
            process.standardError = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try process.run()
            var text = ""
            for _ in 0..<100 where text.components(separatedBy: "agentbox top:").count < 3 {
                try await Task.sleep(for: .milliseconds(100))
                text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            }
            #expect(text.components(separatedBy: "agentbox top:").count >= 3, "two tables or more: \(text)")
            #expect(text.contains("live ") && text.contains("running"))
            process.signal(SIGINT)
            #expect(await waitForExit(process) == 0)
            await server.stop()
        }
    }
}
