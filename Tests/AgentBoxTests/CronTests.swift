import AgentBox
import AgentBoxAPI
import AgentBoxStore
import Foundation
import Logging
import Testing

/// Cron jobs through the library with the scheduler running, in unsandboxed workspaces (no root needed).
@Suite("Cron jobs", .timeLimit(.minutes(2)))
struct CronTests {
    static let mockAgent = URL(fileURLWithPath: AgentBoxConfiguration.defaultSandboxInitPath()).deletingLastPathComponent()
        .appendingPathComponent("agentbox-mock-agent").path

    /// A manager over the data directory `directory` (opened again after a "restart" with the same directory).
    static func open(_ directory: URL, idleGrace: Duration = .seconds(60), maxJobs: Int = 100) throws -> WorkspaceManager {
        for folder in ["workspaces", "snapshots"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        let (backend, _) = try SandboxKind.unsandboxed.makeBackend(dataDirectory: directory)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var configuration = AgentBoxConfiguration(dataDirectory: directory, idleGrace: idleGrace, sandbox: backend)
        configuration.cronMaxJobsPerWorkspace = maxJobs
        return WorkspaceManager(
            configuration: configuration, store: try SQLiteStore(path: directory.appendingPathComponent("agentbox.sqlite").path), logger: logger)
    }

    /// Runs `body` while `manager`'s background work (the cron scheduler with it) runs; then stops it and shuts the
    /// manager down, as a server does.
    static func withScheduler<T>(_ manager: WorkspaceManager, _ body: () async throws -> T) async throws -> T {
        let background = Task { await manager.runBackgroundWork() }
        do {
            let result = try await body()
            background.cancel()
            await background.value
            await manager.shutdown()
            return result
        } catch {
            background.cancel()
            await background.value
            await manager.shutdown()
            throw error
        }
    }

    /// Waits for `count` cron events of `kinds` on `stream`, returning every event seen until then.
    static func waitForCron(
        _ stream: AsyncStream<WorkspaceEventEnvelope>, kinds: Set<CronEventNotice.Kind> = [.complete, .error], count: Int = 1
    ) async -> [WorkspaceEvent] {
        var seen: [WorkspaceEvent] = []
        var matched = 0
        for await envelope in stream {
            seen.append(envelope.event)
            if case .cronEvent(let notice) = envelope.event, kinds.contains(notice.kind) {
                matched += 1
                if matched == count { break }
            }
        }
        return seen
    }

    static func exec(_ command: String, timeoutMs: Int? = nil) -> CronAction {
        .exec(CronExecAction(command: command, timeoutMs: timeoutMs))
    }

    static let farFuture = "0 0 1 1 *"

    @Test func anExecJobWakesItsWorkspaceRunsOnScheduleAndRecordsItsOutput() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try Self.open(directory)
            _ = try await manager.create(key: key("ws"))
            try await Self.withScheduler(manager) {
                let events = try await manager.events(key: key("ws"))
                let job = try await manager.createCronJob(
                    key: key("ws"), CronJobRequest(id: "tick", schedule: "* * * * * *", action: Self.exec("echo hi; echo oops >&2")))
                #expect(job.id == "tick" && job.overlap == .skip && job.enabled && job.timezone == "UTC" && job.runCount == 0)
                let next = try #require(job.nextRunAt)
                #expect(next > job.createdAt && next.timeIntervalSince(job.createdAt) <= 1.001)
                #expect(next.timeIntervalSince1970 == next.timeIntervalSince1970.rounded(), "slots are whole seconds")
                #expect(try await manager.workspace(key: key("ws")).state == .sleeping, "scheduling does not boot")

                let seen = await Self.waitForCron(events)
                let booted = seen.firstIndex { if case .vmBooted = $0 { true } else { false } }
                let fired = seen.firstIndex { if case .cronEvent(let notice) = $0 { notice.kind == .fire } else { false } }
                #expect(booted != nil && fired != nil, "the due job woke the sleeping workspace and said it fired")

                let paused = try await manager.updateCronJob(key: key("ws"), id: "tick", CronJobPatch(enabled: false))
                #expect(!paused.enabled && paused.nextRunAt == nil)
                let runs = try await manager.cronRuns(key: key("ws"), id: "tick").items
                let run = try #require(runs.last)
                #expect(run.status == .ok && run.trigger == .schedule && run.exitCode == 0)
                #expect(run.stdout == "hi\n" && run.stderr == "oops\n")
                #expect(run.scheduledAt == next, "the first run is the slot the job waited for")
                #expect(try #require(run.startedAt) >= run.scheduledAt && run.endedAt! >= run.startedAt!)
                let counted = try await manager.cronJob(key: key("ws"), id: "tick")
                #expect(counted.runCount == runs.filter { $0.status != .skipped }.count && counted.lastRunAt == runs.first?.scheduledAt)

                // Disabled: no more runs, however long we wait.
                try await Task.sleep(for: .milliseconds(1500))
                #expect(try await manager.cronRuns(key: key("ws"), id: "tick").items.count == runs.count)
            }
        }
    }

    @Test func overlapPoliciesSkipQueueOrAllow() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try Self.open(directory)
            _ = try await manager.create(key: key("ws"))
            try await Self.withScheduler(manager) {
                let events = try await manager.events(key: key("ws"))
                _ = try await manager.createCronJob(
                    key: key("ws"), CronJobRequest(id: "slow", schedule: Self.farFuture, action: Self.exec("sleep 0.7"), overlap: .skip))
                let first = try await manager.runCronJob(key: key("ws"), id: "slow")
                #expect(first.status == .running && first.trigger == .manual)
                let skipped = try await manager.runCronJob(key: key("ws"), id: "slow")
                #expect(skipped.status == .skipped && skipped.error?.contains("still running") == true)
                #expect(try await manager.cronJob(key: key("ws"), id: "slow").running)
                _ = await Self.waitForCron(events)

                _ = try await manager.updateCronJob(key: key("ws"), id: "slow", CronJobPatch(overlap: .queue))
                let running = try await manager.runCronJob(key: key("ws"), id: "slow")
                let queued = try await manager.runCronJob(key: key("ws"), id: "slow")
                let overflow = try await manager.runCronJob(key: key("ws"), id: "slow")
                #expect([running.status, queued.status, overflow.status] == [.running, .queued, .skipped], "one run waits, no more")
                _ = await Self.waitForCron(events, count: 2)
                let afterQueue = try await manager.cronRuns(key: key("ws"), id: "slow", limit: 3).items
                #expect(afterQueue.map(\.runId) == [overflow.runId, queued.runId, running.runId])
                #expect(afterQueue.map(\.status) == [.skipped, .ok, .ok])
                let waited = afterQueue[1]
                #expect(try #require(waited.startedAt) >= afterQueue[2].endedAt!, "the queued run started after the one it waited for")

                _ = try await manager.updateCronJob(key: key("ws"), id: "slow", CronJobPatch(overlap: .allow))
                let both = [try await manager.runCronJob(key: key("ws"), id: "slow"), try await manager.runCronJob(key: key("ws"), id: "slow")]
                #expect(both.map(\.status) == [.running, .running])
                _ = await Self.waitForCron(events, count: 2)
                let job = try await manager.cronJob(key: key("ws"), id: "slow")
                #expect(job.runCount == 5 && !job.running, "skipped runs are not counted")
                let text = String(decoding: try #require(try await manager.prometheusText()), as: UTF8.self)
                #expect(text.contains("agentbox_cron_fires_total 5") && text.contains("agentbox_cron_skips_total 2"), "\(text.split(separator: "\n").filter { $0.contains("cron") })")
            }
        }
    }

    @Test func failuresAndTimeoutsAreRecordedAsErrors() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try Self.open(directory)
            _ = try await manager.create(key: key("ws"))
            try await Self.withScheduler(manager) {
                let events = try await manager.events(key: key("ws"))
                _ = try await manager.createCronJob(key: key("ws"), CronJobRequest(id: "fails", schedule: Self.farFuture, action: Self.exec("exit 3")))
                _ = try await manager.createCronJob(
                    key: key("ws"), CronJobRequest(id: "hangs", schedule: Self.farFuture, action: Self.exec("sleep 30", timeoutMs: 300)))
                _ = try await manager.createCronJob(
                    key: key("ws"), CronJobRequest(id: "loud", schedule: Self.farFuture, action: Self.exec("head -c 100000 /dev/zero | tr '\\0' x")))
                for id in ["fails", "hangs", "loud"] { _ = try await manager.runCronJob(key: key("ws"), id: id) }
                let seen = await Self.waitForCron(events, count: 3)
                let errors = seen.compactMap { event -> CronEventNotice? in
                    if case .cronEvent(let notice) = event, notice.kind == .error { notice } else { nil }
                }
                #expect(Set(errors.map(\.jobId)) == ["fails", "hangs"])
                let failed = try #require(try await manager.cronRuns(key: key("ws"), id: "fails").items.first)
                #expect(failed.status == .error && failed.exitCode == 3 && failed.error == "exit code 3")
                let hung = try #require(try await manager.cronRuns(key: key("ws"), id: "hangs").items.first)
                #expect(hung.status == .error && hung.error?.contains("timed out") == true)
                let loud = try #require(try await manager.cronRuns(key: key("ws"), id: "loud").items.first)
                #expect(loud.status == .ok && loud.truncated == true && loud.stdout?.utf8.count == CronRun.maxOutputBytes, "output is bounded")
            }
        }
    }

    @Test func aSlotMissedWhileTheServerWasDownRunsOnceAndNoSlotRunsTwice() async throws {
        try await withTemporaryDirectory { directory in
            // The first server schedules the job and stops before its slot.
            let first = try Self.open(directory)
            _ = try await first.create(key: key("ws"))
            let job = try await first.createCronJob(key: key("ws"), CronJobRequest(id: "tick", schedule: "* * * * * *", action: Self.exec("true")))
            let missed = try #require(job.nextRunAt)
            await first.shutdown()
            try await Task.sleep(for: .milliseconds(2600))  // two or three slots go by

            let restartedAt = Date()
            let second = try Self.open(directory)
            try await Self.withScheduler(second) {
                let events = try await second.events(key: key("ws"))
                _ = await Self.waitForCron(events)
                _ = try await second.updateCronJob(key: key("ws"), id: "tick", CronJobPatch(enabled: false))
            }
            let third = try Self.open(directory)
            let runs = try await Self.withScheduler(third) {
                _ = try await third.updateCronJob(key: key("ws"), id: "tick", CronJobPatch(enabled: true))
                try await Task.sleep(for: .milliseconds(1300))
                return try await third.cronRuns(key: key("ws"), id: "tick", limit: 100).items
            }
            let beforeRestart = runs.filter { $0.scheduledAt < restartedAt }
            #expect(beforeRestart.map(\.scheduledAt) == [missed], "the missed slots ran once, as the slot the job waited for")
            #expect(Set(runs.map(\.scheduledAt)).count == runs.count, "no slot ran twice")
            #expect(runs.count >= 2, "the third server ran the job again after enabling it")
        }
    }

    @Test func aRunCutShortByAStopIsRecordedAsInterrupted() async throws {
        try await withTemporaryDirectory { directory in
            let first = try Self.open(directory)
            _ = try await first.create(key: key("ws"))
            let run = try await Self.withScheduler(first) {
                let events = try await first.events(key: key("ws"))
                _ = try await first.createCronJob(key: key("ws"), CronJobRequest(id: "long", schedule: Self.farFuture, action: Self.exec("sleep 60")))
                let run = try await first.runCronJob(key: key("ws"), id: "long")
                _ = await Self.waitForCron(events, kinds: [.fire])
                return run
            }
            let second = try Self.open(directory)
            let stored = try #require(try await second.cronRuns(key: key("ws"), id: "long").items.first)
            #expect(stored.runId == run.runId && stored.status == .error && stored.error?.contains("interrupted") == true && stored.endedAt != nil, "\(stored)")
            await second.shutdown()
        }
    }

    @Test func aRunningJobKeepsItsWorkspaceAwake() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try Self.open(directory, idleGrace: .milliseconds(100))
            _ = try await manager.create(key: key("ws"))
            try await Self.withScheduler(manager) {
                let events = try await manager.events(key: key("ws"))
                _ = try await manager.createCronJob(key: key("ws"), CronJobRequest(id: "j", schedule: Self.farFuture, action: Self.exec("sleep 2")))
                _ = try await manager.runCronJob(key: key("ws"), id: "j")
                _ = await Self.waitForCron(events, kinds: [.fire])
                try await Task.sleep(for: .milliseconds(1000))
                #expect(try await manager.workspace(key: key("ws")).state != .sleeping, "awake while its run runs, past the idle grace")
                var sawShutdown = false
                for await envelope in events {
                    if case .vmShutdown = envelope.event {
                        sawShutdown = true
                        break
                    }
                }
                #expect(sawShutdown, "it sleeps once the run is over")
                #expect(try await manager.cronRuns(key: key("ws"), id: "j").items.first?.status == .ok)
            }
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: mockAgent), "needs agentbox-mock-agent beside the tests"))
    func aSessionJobPromptsOneSessionItMadeOnItsFirstRun() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try Self.open(directory)
            _ = try await manager.create(key: key("ws"))
            try await Self.withScheduler(manager) {
                let events = try await manager.events(key: key("ws"))
                _ = try await manager.createCronJob(
                    key: key("ws"),
                    CronJobRequest(id: "agent", schedule: Self.farFuture, action: .session(CronSessionAction(agent: "mock", prompt: "hello from cron"))))
                for _ in 0..<2 {
                    _ = try await manager.runCronJob(key: key("ws"), id: "agent")
                    _ = await Self.waitForCron(events)
                }
                let runs = try await manager.cronRuns(key: key("ws"), id: "agent").items
                #expect(runs.count == 2 && runs.allSatisfy { $0.status == .ok && $0.stopReason == "end_turn" })
                let sessionId = try #require(runs.first?.sessionId)
                #expect(runs.allSatisfy { $0.sessionId == sessionId }, "the second run reused the session")
                #expect(try await manager.cronJob(key: key("ws"), id: "agent").sessionId == sessionId)
                let transcript = try await manager.sessionEvents(key: key("ws"), id: sessionId, limit: 1000).items
                #expect(transcript.filter { $0.type == "prompt" }.count == 2)
            }
        }
    }

    @Test func badJobsAreRefusedNamingTheField() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try Self.open(directory, maxJobs: 2)
            _ = try await manager.create(key: key("ws"))
            let cases: [(CronJobRequest, String)] = [
                (CronJobRequest(schedule: "61 * * * *", action: Self.exec("true")), "schedule"),
                (CronJobRequest(schedule: "* * *", action: Self.exec("true")), "schedule"),
                (CronJobRequest(schedule: "0 0 30 2 *", action: Self.exec("true")), "schedule"),
                (CronJobRequest(schedule: "@fortnightly", action: Self.exec("true")), "schedule"),
                (CronJobRequest(schedule: "2020-01-01T00:00:00Z", action: Self.exec("true")), "past"),
                (CronJobRequest(schedule: "* * * * *", timezone: "Mars/Olympus_Mons", action: Self.exec("true")), "timezone"),
                (CronJobRequest(id: "../x", schedule: "* * * * *", action: Self.exec("true")), "id"),
                (CronJobRequest(schedule: "* * * * *", action: Self.exec("  ")), "action.command"),
                (CronJobRequest(schedule: "* * * * *", action: Self.exec("true", timeoutMs: 0)), "action.timeoutMs"),
                (CronJobRequest(schedule: "* * * * *", action: .session(CronSessionAction(agent: "nobody", prompt: "hi"))), "action.agent"),
                (CronJobRequest(schedule: "* * * * *", action: .session(CronSessionAction(agent: "mock", prompt: ""))), "action.prompt"),
            ]
            for (request, field) in cases {
                let error = await #expect(throws: AgentBoxError.self) { try await manager.createCronJob(key: key("ws"), request) }
                #expect(error?.code == .invalidArgument, "\(request.schedule) \(field)")
                #expect(error?.message.contains(field) == true, "'\(error?.message ?? "")' names \(field)")
            }
            #expect(try await manager.cronJobs(key: key("ws")).items.isEmpty, "nothing was kept")

            _ = try await manager.createCronJob(key: key("ws"), CronJobRequest(id: "a", schedule: "@daily", action: Self.exec("true")))
            let taken = await #expect(throws: AgentBoxError.self) {
                try await manager.createCronJob(key: key("ws"), CronJobRequest(id: "a", schedule: "@daily", action: Self.exec("true")))
            }
            #expect(taken?.code == .conflict)
            _ = try await manager.createCronJob(key: key("ws"), CronJobRequest(schedule: "@daily", action: Self.exec("true")))
            let full = await #expect(throws: AgentBoxError.self) {
                try await manager.createCronJob(key: key("ws"), CronJobRequest(schedule: "@daily", action: Self.exec("true")))
            }
            #expect(full?.code == .conflict)

            for call in [
                { _ = try await manager.cronJob(key: key("ws"), id: "absent") },
                { _ = try await manager.runCronJob(key: key("ws"), id: "absent") },
                { try await manager.deleteCronJob(key: key("ws"), id: "absent") },
                { _ = try await manager.cronRuns(key: key("ws"), id: "absent") },
                { _ = try await manager.updateCronJob(key: key("ws"), id: "absent", CronJobPatch(enabled: false)) },
                { _ = try await manager.cronJobs(key: key("nowhere")) },
            ] as [@Sendable () async throws -> Void] {
                let error = await #expect(throws: AgentBoxError.self) { try await call() }
                #expect(error?.code == .notFound)
            }
            let patch = await #expect(throws: AgentBoxError.self) {
                try await manager.updateCronJob(key: key("ws"), id: "a", CronJobPatch(timezone: "Nowhere/Land"))
            }
            #expect(patch?.code == .invalidArgument && patch?.message.contains("timezone") == true)
            let limit = await #expect(throws: AgentBoxError.self) { try await manager.cronRuns(key: key("ws"), id: "a", limit: 0) }
            #expect(limit?.code == .invalidArgument)
            #expect(try await manager.cronJob(key: key("ws"), id: "a").timezone == "UTC", "a refused change changes nothing")
            await manager.shutdown()
        }
    }

    @Test func aTimeZoneAndARescheduleMoveTheNextSlot() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try Self.open(directory)
            _ = try await manager.create(key: key("ws"))
            let job = try await manager.createCronJob(
                key: key("ws"), CronJobRequest(id: "nine", schedule: "0 9 * * *", timezone: "Asia/Tokyo", action: Self.exec("true")))
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "Asia/Tokyo")!
            let next = try #require(job.nextRunAt)
            #expect(calendar.component(.hour, from: next) == 9 && calendar.component(.minute, from: next) == 0)
            #expect(next > Date() && next.timeIntervalSinceNow <= 86_400)
            let moved = try await manager.updateCronJob(key: key("ws"), id: "nine", CronJobPatch(schedule: "2099-06-01T12:00:00+02:00"))
            #expect(moved.nextRunAt == ISO8601DateFormatter().date(from: "2099-06-01T10:00:00Z"))
            #expect(moved.schedule == "2099-06-01T12:00:00+02:00" && moved.timezone == "Asia/Tokyo")
            await manager.shutdown()
        }
    }

    @Test func destroyingTheWorkspaceDeletesItsJobs() async throws {
        try await withTemporaryDirectory { directory in
            let manager = try Self.open(directory)
            _ = try await manager.create(key: key("ws"))
            _ = try await manager.createCronJob(key: key("ws"), CronJobRequest(id: "j", schedule: "@hourly", action: Self.exec("true")))
            try await manager.destroy(key: key("ws"))
            _ = try await manager.create(key: key("ws"))
            #expect(try await manager.cronJobs(key: key("ws")).items.isEmpty)
            await manager.shutdown()
        }
    }
}
