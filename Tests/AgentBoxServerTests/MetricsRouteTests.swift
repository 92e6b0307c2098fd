import AgentBox
import AgentBoxAPI
import AgentBoxServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The value of the sample `series` (the metric name with its labels, as the exposition prints them) in Prometheus
/// text; `nil` when the text has no such line.
func sample(_ series: String, in text: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

/// Scrapes `/metrics` with the bearer token `token` (if any) and returns its text.
func scrape(_ client: some TestClientProtocol, token: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
    let response = try await client.execute(
        uri: "/metrics", method: .get, headers: token.map { [.authorization: "Bearer \($0)"] } ?? [:])
    #expect(response.status == .ok, sourceLocation: sourceLocation)
    #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8", sourceLocation: sourceLocation)
    return String(buffer: response.body)
}

@Suite("Metrics routes")
struct MetricsRouteTests {
    /// Every family docs/API.md lists; each is present from the start (counters at 0), so dashboards never miss one.
    static let families = [
        "agentbox_http_requests_total", "agentbox_http_request_duration_seconds", "agentbox_workspaces", "agentbox_workspace_runtimes",
        "agentbox_parked_sandboxes",
        "agentbox_workspace_boots_total", "agentbox_workspace_boot_duration_seconds", "agentbox_execs_total",
        "agentbox_exec_duration_seconds", "agentbox_processes_started_total", "agentbox_processes", "agentbox_shells",
        "agentbox_sessions", "agentbox_session_events_stored_total", "agentbox_workspace_events_total", "agentbox_sse_subscribers",
        "agentbox_preview_requests_total", "agentbox_preview_bytes_total", "agentbox_egress_allowed_total",
        "agentbox_egress_denied_total", "agentbox_egress_bytes_total", "agentbox_cron_fires_total", "agentbox_cron_skips_total",
        "agentbox_cron_errors_total", "agentbox_store_operation_duration_seconds",
    ]

    @Test func metricsNeedTheTokenAndCountRequestsByRouteTemplate() async throws {
        try await withServer(token: "secret") { client, _ in
            try expectProblem(try await client.execute(uri: "/metrics", method: .get), .unauthorized)
            try expectProblem(
                try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer wrong"]), .unauthorized)
            let auth: HTTPFields = [.authorization: "Bearer secret"]
            #expect(try await client.execute(uri: "/v1/workspaces/alpha-key", method: .put, headers: auth).status == .created)
            #expect(try await client.execute(uri: "/v1/workspaces/alpha-key", method: .put, headers: auth).status == .ok)
            #expect(try await client.execute(uri: "/v1/workspaces/beta-key", method: .get, headers: auth).status == .notFound)
            #expect(try await client.execute(uri: "/v1/no/such/route-xyz", method: .get, headers: auth).status == .notFound)
            #expect(try await client.execute(uri: "/v1/workspaces/alpha-key", method: HTTPRequest.Method("FROB")!, headers: auth).status.code >= 400)

            let text = try await scrape(client, token: "secret")
            for family in Self.families {
                #expect(text.contains("# TYPE \(family) "), "\(family) is missing")
            }
            #expect(sample(#"agentbox_http_requests_total{method="PUT",route="/v1/workspaces/{key}",status="201"}"#, in: text) == 1)
            #expect(sample(#"agentbox_http_requests_total{method="PUT",route="/v1/workspaces/{key}",status="200"}"#, in: text) == 1)
            #expect(sample(#"agentbox_http_requests_total{method="GET",route="/v1/workspaces/{key}",status="404"}"#, in: text) == 1)
            #expect(sample(#"agentbox_http_requests_total{method="GET",route="/metrics",status="401"}"#, in: text) == 2)
            #expect(sample(#"agentbox_http_request_duration_seconds_count{method="PUT",route="/v1/workspaces/{key}"}"#, in: text) == 2)
            #expect(sample(#"agentbox_workspaces{state="sleeping"}"#, in: text) == 1)
            #expect(sample(#"agentbox_workspaces{state="running"}"#, in: text) == 0)
            #expect(sample(#"agentbox_store_operation_duration_seconds_count{operation="createWorkspace",kind="write"}"#, in: text) == 1)
            // Labels are templates and fixed sets: no key, raw path or unknown method becomes a label value.
            for raw in ["alpha-key", "beta-key", "route-xyz", "FROB"] {
                #expect(!text.contains(raw), "\(raw) leaked into a label")
            }
            #expect(text.contains(#"route="unmatched""#))
            #expect(text.contains(#"method="other""#))
        }
    }

    @Test func sessionsAndWorkspacesAreCountedFromTheStoreWithoutLoadingThem() async throws {
        try await withServer { client, manager in
            for index in 0..<25 {
                #expect(try await client.execute(uri: "/v1/workspaces/w\(index)", method: .put).status == .created)
            }
            let text = try await scrape(client)
            #expect(sample(#"agentbox_workspaces{state="sleeping"}"#, in: text) == 25)
            #expect(sample(#"agentbox_workspace_runtimes{residency="loaded"}"#, in: text) == 0, "a scrape loads no workspace")
            #expect(manager.loadedRuntimes.loaded == 0)
            #expect(try await client.execute(uri: "/v1/workspaces/w3", method: .delete).status == .noContent)
            #expect(sample(#"agentbox_workspaces{state="sleeping"}"#, in: try await scrape(client)) == 24)
        }
    }

    /// A sleeping workspace's figures come without a boot: live ones are 0, its disk usage is real.
    @Test func aSleepingWorkspaceAnswersWithoutBooting() async throws {
        try await withServer { client, _ in
            #expect(try await client.execute(uri: "/v1/workspaces/idle", method: .put).status == .created)
            let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 300_000)
            #expect(try await client.execute(uri: "/v1/workspaces/idle/fs/file?path=/workspace/data.bin", method: .put, body: payload).status == .ok)

            let response = try await client.execute(uri: "/v1/workspaces/idle/metrics", method: .get)
            #expect(response.status == .ok)
            let metrics = try decode(WorkspaceMetrics.self, response)
            #expect(metrics.state == .sleeping)
            #expect(metrics.cpuUsageMs == 0 && metrics.memoryBytes == 0 && metrics.memoryPeakBytes == 0 && metrics.pids == 0)
            #expect(metrics.netRxBytes == 0 && metrics.netTxBytes == 0)
            #expect(metrics.diskBytes >= 300_000, "\(metrics.diskBytes)")
            #expect(metrics.diskLimitBytes == nil, "no disk pool: no limit is enforced")
            #expect(abs(metrics.sampledAt.timeIntervalSinceNow) < 60)

            #expect(try decode(Workspace.self, try await client.execute(uri: "/v1/workspaces/idle", method: .get)).state == .sleeping)
            let text = try await scrape(client)
            #expect(sample(#"agentbox_workspace_boots_total{outcome="ok"}"#, in: text) == 0)
            #expect(sample(#"agentbox_workspaces{state="sleeping"}"#, in: text) == 1)
        }
    }

    @Test func unknownWorkspacesAre404AndMalformedKeys400() async throws {
        try await withServer { client, _ in
            for route in ["metrics", "usage"] {
                let missing = try expectProblem(try await client.execute(uri: "/v1/workspaces/ghost/\(route)", method: .get), .notFound)
                #expect(missing.contains("ghost"))
                try expectProblem(try await client.execute(uri: "/v1/workspaces/bad%20key/\(route)", method: .get), .badRequest)
                try expectProblem(try await client.execute(uri: "/v1/workspaces/\(String(repeating: "k", count: 200))/\(route)", method: .get), .badRequest)
            }
        }
    }

    @Test func usageIsATypedStructureOfZerosUntilTheGatewayCountsCalls() async throws {
        try await withServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/u", method: .put)
            let response = try await client.execute(uri: "/v1/workspaces/u/usage", method: .get)
            #expect(response.status == .ok)
            let usage = try decode(WorkspaceUsage.self, response)
            #expect(usage == WorkspaceUsage())
            let raw = try decode(JSONValue.self, response)
            #expect(raw["llm"]?["byModel"] == .object([:]) && raw["llm"]?["inputTokens"] == .number(0) && raw["toolCalls"] == .number(0))
        }
    }
}

@Suite("Metrics of running workspaces", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(2)))
struct RunningWorkspaceMetricsTests {
    @Test func aRunningWorkspaceReportsItsCgroupFigures() async throws {
        try await withServer(sandbox: true) { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/busy", method: .put)
            let spawn = try await client.execute(
                uri: "/v1/workspaces/busy/processes", method: .post, headers: json, body: ByteBuffer(string: #"{"command":"sleep","args":["60"]}"#))
            #expect(spawn.status == .created)
            // Some CPU time and memory of its own: a busy loop in a shell holding a few MiB.
            let exec = try await client.execute(
                uri: "/v1/workspaces/busy/exec", method: .post, headers: json,
                body: ByteBuffer(string: #"{"command":"x=$(head -c 4000000 /dev/zero | tr '\\0' a); i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; echo ${#x}"}"#))
            #expect(exec.status == .ok)
            #expect(try decode(ExecResult.self, exec).stdout == "4000000\n")

            let metrics = try decode(WorkspaceMetrics.self, try await client.execute(uri: "/v1/workspaces/busy/metrics", method: .get))
            #expect(metrics.state == .running)
            #expect(metrics.cpuUsageMs > 0, "\(metrics)")
            #expect(metrics.memoryBytes > 0, "\(metrics)")
            #expect(metrics.memoryPeakBytes >= 4_000_000, "the exec's shell held 4 MB: \(metrics)")
            #expect(metrics.pids >= 2, "the sandbox's init and sleep: \(metrics)")

            var text = try await scrape(client)
            #expect(sample("agentbox_processes", in: text) == 1, "the sleep; the exec has ended")
            #expect(sample("agentbox_processes_started_total", in: text) == 2)
            #expect(sample("agentbox_execs_total", in: text) == 1)
            #expect(sample("agentbox_exec_duration_seconds_count", in: text) == 1)
            #expect(sample(#"agentbox_workspace_boots_total{outcome="ok"}"#, in: text) == 1)
            #expect(sample("agentbox_workspace_boot_duration_seconds_count", in: text) == 1)
            #expect(sample(#"agentbox_workspaces{state="running"}"#, in: text) == 1)
            #expect(sample(#"agentbox_workspaces{state="sleeping"}"#, in: text) == 0)

            #expect(try await client.execute(uri: "/v1/workspaces/busy/sleep", method: .post).status == .ok)
            let asleep = try decode(WorkspaceMetrics.self, try await client.execute(uri: "/v1/workspaces/busy/metrics", method: .get))
            #expect(asleep.state == .sleeping && asleep.memoryBytes == 0 && asleep.pids == 0 && asleep.cpuUsageMs == 0)
            text = try await scrape(client)
            #expect(sample("agentbox_processes", in: text) == 0, "the sleep was killed with its workspace")
            #expect(sample(#"agentbox_workspaces{state="sleeping"}"#, in: text) == 1)
        }
    }

    @Test func shellsAreAGauge() async throws {
        try await withServer(sandbox: true) { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/sh", method: .put)
            let opened = try await client.execute(
                uri: "/v1/workspaces/sh/shells", method: .post, headers: json, body: ByteBuffer(string: #"{"command":"/bin/sh"}"#))
            #expect(opened.status == .created)
            let shell = try decode(Shell.self, opened)
            #expect(sample("agentbox_shells", in: try await scrape(client)) == 1)
            #expect(try await client.execute(uri: "/v1/workspaces/sh/shells/\(shell.id)", method: .delete).status == .noContent)
            #expect(sample("agentbox_shells", in: try await scrape(client)) == 0)
        }
    }

    /// Network figures count what crosses the workspace's boundary: egress through its proxy (allowed or denied, by
    /// reason) and fetches into its servers.
    @Test func egressAndFetchesCountAsTheWorkspacesNetworkTraffic() async throws {
        try await withLiveServer { client, _ in
            let port = try #require(client.port)
            let config = #"{"network":{"egress":{"allow":["host.agentbox.internal:\#(port)","localhost:9"]}}}"#
            #expect(try await client.execute(uri: "/v1/workspaces/net", method: .put, headers: json, body: ByteBuffer(string: config)).status == .created)
            // Allowed: the host alias, named exactly, reaches this server's health route. Denied by policy: a host the
            // list does not name. Denied by address: an allowed name that resolves to the host's loopback.
            let command = "curl -s -m 5 http://host.agentbox.internal:\(port)/v1/health; echo; "
                + "curl -s -m 5 -o /dev/null -w '%{http_code}\\n' http://denied.test/; "
                + "curl -s -m 5 -o /dev/null -w '%{http_code}\\n' -x http://127.0.0.1:3128 --noproxy '' http://localhost:9/"
            let exec = try await client.execute(
                uri: "/v1/workspaces/net/exec", method: .post, headers: json,
                body: ByteBuffer(string: String(data: try JSONEncoder().encode(["command": command]), encoding: .utf8)!))
            let result = try decode(ExecResult.self, exec)
            #expect(result.stdout.contains(#""status":"ok""#) && result.stdout.contains("403\n403"), "\(result)")

            let metrics = try decode(WorkspaceMetrics.self, try await client.execute(uri: "/v1/workspaces/net/metrics", method: .get))
            // The health answer came in through the proxy; the requests went out through it.
            #expect(metrics.netRxBytes > 100 && metrics.netTxBytes > 100, "\(metrics)")
            var text = try await scrape(client)
            #expect(sample("agentbox_egress_allowed_total", in: text) == 1)
            #expect(sample(#"agentbox_egress_denied_total{reason="policy"}"#, in: text) == 1)
            #expect(sample(#"agentbox_egress_denied_total{reason="address"}"#, in: text) == 1)
            #expect((sample(#"agentbox_egress_bytes_total{direction="in"}"#, in: text) ?? 0) >= Double(metrics.netRxBytes))

            // A fetch into a server inside adds its request and its answer.
            _ = try await client.execute(
                uri: "/v1/workspaces/net/fs/file?path=/workspace/echo.py", method: .put, body: ByteBuffer(string: echoServerScript))
            let spawn = try await client.execute(
                uri: "/v1/workspaces/net/processes", method: .post, headers: json,
                body: ByteBuffer(string: #"{"command":"python3","args":["/workspace/echo.py","8400"]}"#))
            #expect(spawn.status == .created)
            let fetch = try await client.execute(
                uri: "/v1/workspaces/net/fetch", method: .post, headers: json,
                body: ByteBuffer(string: #"{"port":8400,"path":"/hello","method":"POST","body":"\#(Data(String(repeating: "y", count: 5000).utf8).base64EncodedString())"}"#))
            #expect(fetch.status == .ok)
            let after = try decode(WorkspaceMetrics.self, try await client.execute(uri: "/v1/workspaces/net/metrics", method: .get))
            #expect(after.netRxBytes >= metrics.netRxBytes + 5000, "the 5,000-byte request went in: \(after)")
            #expect(after.netTxBytes >= metrics.netTxBytes + 5000, "its echo came out: \(after)")

            // A preview request is counted, with its bytes both ways.
            let created = try await client.execute(
                uri: "/v1/workspaces/net/previews", method: .post, headers: json, body: ByteBuffer(string: #"{"port":8400}"#))
            let preview = try decode(Preview.self, created)
            let page = try await client.execute(uri: "/preview/\(preview.token)/page", method: .get)
            #expect(page.status == .ok)
            text = try await scrape(client)
            #expect(sample("agentbox_preview_requests_total", in: text) == 1)
            #expect((sample(#"agentbox_preview_bytes_total{direction="in"}"#, in: text) ?? 0) > 0)
            #expect((sample(#"agentbox_preview_bytes_total{direction="out"}"#, in: text) ?? 0) > Double(page.body.readableBytes))
            let final = try decode(WorkspaceMetrics.self, try await client.execute(uri: "/v1/workspaces/net/metrics", method: .get))
            #expect(final.netTxBytes > after.netTxBytes, "the preview's answer came out of the workspace")
        }
    }
}
