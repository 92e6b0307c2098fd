import AgentBox
import NIOFoundationEssentialsCompat
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Cron routes", .timeLimit(.minutes(2)))
struct CronRouteTests {
    @Test func createListGetPatchRunAndDelete() async throws {
        try await withServer { client, manager in
            _ = try await client.execute(uri: "/v1/workspaces/w", method: .put)
            let created = try await client.execute(
                uri: "/v1/workspaces/w/cron", method: .post, headers: json,
                body: ByteBuffer(
                    string: #"{"id":"nightly","schedule":"30 2 * * MON-FRI","timezone":"America/New_York","action":{"type":"exec","command":"date"},"overlap":"queue"}"#
                ))
            #expect(created.status == .created)
            let job = try decode(CronJob.self, created)
            #expect(job.id == "nightly" && job.timezone == "America/New_York" && job.overlap == .queue && job.enabled && !job.running)
            #expect(job.action == .exec(CronExecAction(command: "date")) && job.nextRunAt != nil && job.runCount == 0)
            let raw = try JSONSerialization.jsonObject(with: Data(buffer: created.body)) as? [String: Any]
            #expect((raw?["action"] as? [String: Any])?["type"] as? String == "exec", "the action carries its type on the wire")

            let session = try await client.execute(
                uri: "/v1/workspaces/w/cron", method: .post, headers: json,
                body: ByteBuffer(string: #"{"schedule":"@hourly","action":{"type":"session","agent":"mock","prompt":"status?"}}"#))
            #expect(session.status == .created)
            let generated = try decode(CronJob.self, session)
            #expect(generated.id.hasPrefix("cron_") && generated.overlap == .skip && generated.timezone == "UTC")

            let list = try decode(CronJobList.self, try await client.execute(uri: "/v1/workspaces/w/cron", method: .get))
            #expect(list.items.map(\.id) == ["nightly", generated.id])
            #expect(try decode(CronJob.self, try await client.execute(uri: "/v1/workspaces/w/cron/nightly", method: .get)) == job)

            let patched = try await client.execute(
                uri: "/v1/workspaces/w/cron/nightly", method: .patch, headers: json, body: ByteBuffer(string: #"{"enabled":false}"#))
            #expect(patched.status == .ok)
            let disabled = try decode(CronJob.self, patched)
            #expect(!disabled.enabled && disabled.nextRunAt == nil && disabled.schedule == job.schedule)
            let rescheduled = try decode(
                CronJob.self,
                try await client.execute(
                    uri: "/v1/workspaces/w/cron/nightly", method: .patch, headers: json,
                    body: ByteBuffer(string: #"{"enabled":true,"schedule":"0 0 29 2 *","timezone":"UTC"}"#)))
            let leapDay = try #require(rescheduled.nextRunAt)
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            #expect(calendar.component(.month, from: leapDay) == 2 && calendar.component(.day, from: leapDay) == 29)

            // A run by hand is recorded at once; this router runs no scheduler, so it stays running.
            let run = try await client.execute(uri: "/v1/workspaces/w/cron/nightly/run", method: .post)
            #expect(run.status == .accepted)
            let started = try decode(CronRun.self, run)
            #expect(started.status == .running && started.trigger == .manual && started.jobId == "nightly")
            let runs = try decode(CronRunList.self, try await client.execute(uri: "/v1/workspaces/w/cron/nightly/runs?limit=5", method: .get))
            #expect(runs.items.map(\.runId) == [started.runId])

            let deleted = try await client.execute(uri: "/v1/workspaces/w/cron/nightly", method: .delete)
            #expect(deleted.status == .noContent)
            try expectProblem(try await client.execute(uri: "/v1/workspaces/w/cron/nightly", method: .get), .notFound)
            #expect(try await manager.workspace(key: WorkspaceKey(rawValue: "w")!).state == .sleeping, "nothing booted")
        }
    }

    @Test(arguments: [
        (#"{"schedule":"* * * *","action":{"type":"exec","command":"x"}}"#, "schedule"),
        (#"{"schedule":"*/0 * * * *","action":{"type":"exec","command":"x"}}"#, "schedule"),
        (#"{"schedule":"0 0 31 2 *","action":{"type":"exec","command":"x"}}"#, "schedule"),
        (#"{"schedule":"1999-12-31T23:59:59Z","action":{"type":"exec","command":"x"}}"#, "past"),
        (#"{"schedule":"@daily","timezone":"Not/AZone","action":{"type":"exec","command":"x"}}"#, "timezone"),
        (#"{"schedule":"@daily","action":{"type":"shell","command":"x"}}"#, "exec or session"),
        (#"{"schedule":"@daily","action":{"type":"exec"}}"#, "command"),
        (#"{"schedule":"@daily"}"#, "action"),
        (#"{"action":{"type":"exec","command":"x"}}"#, "schedule"),
        (#"{"schedule":"@daily","overlap":"sometimes","action":{"type":"exec","command":"x"}}"#, "overlap"),
        (#"{"id":"a/b","schedule":"@daily","action":{"type":"exec","command":"x"}}"#, "id"),
        (#"{"schedule":"@daily","action":{"type":"session","agent":"ghost","prompt":"x"}}"#, "agent"),
        (#"{"schedule":7,"action":{"type":"exec","command":"x"}}"#, "schedule"),
        (#"not json"#, "JSON"),
    ])
    func badJobsAre400NamingTheField(body: String, field: String) async throws {
        try await withServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/w", method: .put)
            let response = try await client.execute(uri: "/v1/workspaces/w/cron", method: .post, headers: json, body: ByteBuffer(string: body))
            let detail = try expectProblem(response, .badRequest)
            #expect(detail.contains(field), "'\(detail)' names \(field)")
            #expect(try decode(CronJobList.self, try await client.execute(uri: "/v1/workspaces/w/cron", method: .get)).items.isEmpty)
        }
    }

    @Test func unknownThingsAre404AndBadQueriesAre400() async throws {
        try await withServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/w", method: .put)
            let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status)] = [
                ("/v1/workspaces/absent/cron", .get, nil, .notFound),
                ("/v1/workspaces/absent/cron", .post, #"{"schedule":"@daily","action":{"type":"exec","command":"x"}}"#, .notFound),
                ("/v1/workspaces/w/cron/none", .get, nil, .notFound),
                ("/v1/workspaces/w/cron/none", .delete, nil, .notFound),
                ("/v1/workspaces/w/cron/none", .patch, #"{"enabled":false}"#, .notFound),
                ("/v1/workspaces/w/cron/none/run", .post, nil, .notFound),
                ("/v1/workspaces/w/cron/none/runs", .get, nil, .notFound),
                ("/v1/workspaces/bad%20key/cron", .get, nil, .badRequest),
            ]
            for (uri, method, body, status) in cases {
                let response = try await client.execute(uri: uri, method: method, headers: body == nil ? [:] : json, body: body.map { ByteBuffer(string: $0) })
                try expectProblem(response, status)
            }
            _ = try await client.execute(
                uri: "/v1/workspaces/w/cron", method: .post, headers: json,
                body: ByteBuffer(string: #"{"id":"j","schedule":"@daily","action":{"type":"exec","command":"x"}}"#))
            for query in ["limit=0", "limit=101", "limit=abc", "limit=-1"] {
                try expectProblem(try await client.execute(uri: "/v1/workspaces/w/cron/j/runs?\(query)", method: .get), .badRequest)
            }
            let taken = try await client.execute(
                uri: "/v1/workspaces/w/cron", method: .post, headers: json,
                body: ByteBuffer(string: #"{"id":"j","schedule":"@hourly","action":{"type":"exec","command":"y"}}"#))
            try expectProblem(taken, .conflict)
            for patch in [#"{"schedule":"nope"}"#, #"{"timezone":"Atlantis/Capital"}"#, #"{"overlap":"never"}"#, #"{"enabled":"yes"}"#] {
                try expectProblem(
                    try await client.execute(uri: "/v1/workspaces/w/cron/j", method: .patch, headers: json, body: ByteBuffer(string: patch)), .badRequest)
            }
            let unchanged = try decode(CronJob.self, try await client.execute(uri: "/v1/workspaces/w/cron/j", method: .get))
            #expect(unchanged.schedule == "@daily" && unchanged.timezone == "UTC" && unchanged.overlap == .skip, "refused changes change nothing")
        }
    }

    @Test func oversizedFieldsAreRefusedAndAFloodOfRunsStaysBounded() async throws {
        try await withServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/w", method: .put)
            let long = String(repeating: "* ", count: 1000)
            let oversized = [
                (#"{"schedule":"\#(long)","action":{"type":"exec","command":"x"}}"#, "schedule"),
                (#"{"schedule":"@daily","action":{"type":"exec","command":"\#(String(repeating: "x", count: 70_000))"}}"#, "action.command"),
                (#"{"schedule":"@daily","action":{"type":"session","agent":"mock","prompt":"\#(String(repeating: "p", count: 300_000))"}}"#, "action.prompt"),
                (#"{"schedule":"@daily","timezone":"\#(String(repeating: "Z", count: 300))","action":{"type":"exec","command":"x"}}"#, "timezone"),
            ]
            for (body, field) in oversized {
                let detail = try expectProblem(
                    try await client.execute(uri: "/v1/workspaces/w/cron", method: .post, headers: json, body: ByteBuffer(string: body)), .badRequest)
                #expect(detail.hasPrefix(field), "'\(detail.prefix(100))' names \(field)")
            }
            _ = try await client.execute(
                uri: "/v1/workspaces/w/cron", method: .post, headers: json,
                body: ByteBuffer(string: #"{"id":"j","schedule":"@daily","action":{"type":"exec","command":"x"}}"#))
            // This router runs no scheduler: the first run stays running, so every later one is skipped (overlap skip).
            var statuses: [CronRunStatus] = []
            for _ in 0..<150 {
                let response = try await client.execute(uri: "/v1/workspaces/w/cron/j/run", method: .post)
                #expect(response.status == .accepted)
                statuses.append(try decode(CronRun.self, response).status)
            }
            #expect(statuses.first == .running && statuses.dropFirst().allSatisfy { $0 == .skipped })
            let runs = try decode(CronRunList.self, try await client.execute(uri: "/v1/workspaces/w/cron/j/runs?limit=100", method: .get))
            #expect(runs.items.count == 100, "each job keeps its newest 100 runs")
            let job = try decode(CronJob.self, try await client.execute(uri: "/v1/workspaces/w/cron/j", method: .get))
            #expect(job.runCount == 1 && job.running)
        }
    }

    @Test func everyCronRouteNeedsTheToken() async throws {
        try await withServer(token: "secret") { client, _ in
            for (uri, method) in [
                ("/v1/workspaces/w/cron", HTTPRequest.Method.get), ("/v1/workspaces/w/cron", .post), ("/v1/workspaces/w/cron/j", .get),
                ("/v1/workspaces/w/cron/j", .patch), ("/v1/workspaces/w/cron/j", .delete), ("/v1/workspaces/w/cron/j/run", .post),
                ("/v1/workspaces/w/cron/j/runs", .get),
            ] {
                try expectProblem(try await client.execute(uri: uri, method: method), .unauthorized)
                try expectProblem(try await client.execute(uri: uri + "?access_token=secret", method: method), .unauthorized)
            }
        }
    }
}

@Suite("Toolkit routes", .timeLimit(.minutes(2)))
struct ToolkitRouteTests {
    static let toolkit = #"{"description":"Web tools","tools":[{"name":"search","description":"Search","inputSchema":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]},"handler":{"type":"http","url":"http://127.0.0.1:9/hook","headers":{"Authorization":"Bearer host-secret"}}}]}"#

    @Test func registerListGetReplaceDeleteAndAttach() async throws {
        try await withServer { client, _ in
            let created = try await client.execute(uri: "/v1/toolkits/web", method: .put, headers: json, body: ByteBuffer(string: Self.toolkit))
            #expect(created.status == .created)
            #expect(!String(buffer: created.body).contains("host-secret"), "the webhook's credentials are never shown")
            let replaced = try await client.execute(uri: "/v1/toolkits/web", method: .put, headers: json, body: ByteBuffer(string: Self.toolkit))
            #expect(replaced.status == .ok)
            let list = try decode(ToolkitList.self, try await client.execute(uri: "/v1/toolkits", method: .get))
            #expect(list.items.map(\.name) == ["web"])
            let one = try await client.execute(uri: "/v1/toolkits/web", method: .get)
            #expect(one.status == .ok && !String(buffer: one.body).contains("host-secret"))

            let workspace = try decode(
                Workspace.self,
                try await client.execute(uri: "/v1/workspaces/w", method: .put, headers: json, body: ByteBuffer(string: #"{"toolkits":["web"]}"#)))
            #expect(workspace.toolkits == ["web"])
            let changed = try decode(
                Workspace.self,
                try await client.execute(uri: "/v1/workspaces/w", method: .put, headers: json, body: ByteBuffer(string: #"{"toolkits":["web","docs"]}"#)))
            #expect(changed.toolkits == ["web", "docs"], "an existing workspace's toolkits are replaced")
            #expect(try decode(Workspace.self, try await client.execute(uri: "/v1/workspaces/w", method: .get)).toolkits == ["web", "docs"])
            let calls = try decode(ToolCallPage.self, try await client.execute(uri: "/v1/workspaces/w/tool-calls", method: .get))
            #expect(calls.items.isEmpty && calls.nextCursor == nil)

            #expect(try await client.execute(uri: "/v1/toolkits/web", method: .delete).status == .noContent)
            try expectProblem(try await client.execute(uri: "/v1/toolkits/web", method: .get), .notFound)
        }
    }

    @Test(arguments: [
        (#"{"description":"x","tools":[]}"#, "tools"),
        (#"{"description":"x","tools":[{"name":"Bad","description":"x","inputSchema":{"type":"object"},"handler":{"type":"client"}}]}"#, "name"),
        (#"{"description":"x","tools":[{"name":"a","description":"x","inputSchema":{"type":"string"},"handler":{"type":"client"}}]}"#, "inputSchema"),
        (##"{"description":"x","tools":[{"name":"a","description":"x","inputSchema":{"type":"object","$ref":"#/x"},"handler":{"type":"client"}}]}"##, "$ref"),
        (#"{"description":"x","tools":[{"name":"a","description":"x","inputSchema":{"type":"object"},"handler":{"type":"http","url":"file:///etc/passwd"}}]}"#, "url"),
        (#"{"description":"x","tools":[{"name":"a","description":"x","inputSchema":{"type":"object"},"handler":{"type":"smoke"}}]}"#, "http or client"),
        (#"{"description":"x","tools":[{"name":"a","description":"x","inputSchema":{"type":"object"},"handler":{"type":"client","timeoutMs":0}}]}"#, "timeoutMs"),
        (#"{"description":"x","tools":[{"name":"a","description":"x","inputSchema":{"type":"object"},"handler":{"type":"client"}},{"name":"a","description":"y","inputSchema":{"type":"object"},"handler":{"type":"client"}}]}"#, "twice"),
    ])
    func badToolkitsAre400NamingTheField(body: String, field: String) async throws {
        try await withServer { client, _ in
            let detail = try expectProblem(
                try await client.execute(uri: "/v1/toolkits/kit", method: .put, headers: json, body: ByteBuffer(string: body)), .badRequest)
            #expect(detail.contains(field), "'\(detail)' names \(field)")
            try expectProblem(try await client.execute(uri: "/v1/toolkits/kit", method: .get), .notFound)
        }
    }

    @Test func badNamesQueriesAndRepliesAre4xx() async throws {
        try await withServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/w", method: .put)
            try expectProblem(
                try await client.execute(uri: "/v1/toolkits/Bad_Name", method: .put, headers: json, body: ByteBuffer(string: Self.toolkit)), .badRequest)
            try expectProblem(
                try await client.execute(uri: "/v1/workspaces/w2", method: .put, headers: json, body: ByteBuffer(string: #"{"toolkits":["NO"]}"#)), .badRequest)
            for query in ["limit=0", "limit=1001", "after=-1", "after=x"] {
                try expectProblem(try await client.execute(uri: "/v1/workspaces/w/tool-calls?\(query)", method: .get), .badRequest)
            }
            try expectProblem(try await client.execute(uri: "/v1/workspaces/absent/tool-calls", method: .get), .notFound)
            try expectProblem(
                try await client.execute(uri: "/v1/toolkits/web/calls/call_x", method: .post, headers: json, body: ByteBuffer(string: #"{"output":1}"#)), .notFound)
            try expectProblem(
                try await client.execute(uri: "/v1/toolkits/web/calls/call_x", method: .post, headers: json, body: ByteBuffer(string: #"{}"#)), .badRequest)
            try expectProblem(try await client.execute(uri: "/v1/toolkits/absent/calls", method: .get), .notFound)
        }
    }
}
