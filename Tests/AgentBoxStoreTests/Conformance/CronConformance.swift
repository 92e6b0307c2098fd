import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

func cronJob(_ id: String, of workspace: String = "a", next: Date? = time(60), at date: Date = time(0)) -> CronJobRecord {
    CronJobRecord(
        workspaceKey: key(workspace), id: id, schedule: "* * * * *", timezone: "Europe/Berlin",
        action: .exec(CronExecAction(command: "date", cwd: "/workspace", env: ["A": "b"], timeoutMs: 5000)), overlap: .queue, enabled: true,
        createdAt: date, nextRunAt: next)
}

func cronRun(_ runId: String, job: String, of workspace: String = "a", at slot: Date = time(60), status: CronRunStatus = .running) -> CronRunRecord {
    CronRunRecord(
        workspaceKey: key(workspace),
        run: CronRun(runId: runId, jobId: job, scheduledAt: slot, trigger: .schedule, startedAt: slot.addingTimeInterval(0.000_123), status: status))
}

extension StoreConformance {
    @Suite("cron")
    struct Cron {
        @Test(arguments: StoreFactory.all)
        func jobsAreKeptListedChangedAndDeleted(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                var second = cronJob("second", at: time(5))
                second.action = .session(CronSessionAction(agent: "mock", prompt: "hi", cwd: "/workspace/x", model: "m", mode: "plan"))
                second.sessionId = "ses_1"
                let first = cronJob("first", at: time(1))
                try await store.createCronJob(second)
                try await store.createCronJob(first)
                try await store.createCronJob(cronJob("other", of: "b"))
                #expect(try await store.cronJobs(of: key("a")) == [first, second], "oldest first; every field round-trips")
                #expect(try await store.cronJobCount(of: key("a")) == 2)
                #expect(try await store.cronJobCount(of: key("c")) == 0)
                #expect(try await store.cronJob(key: key("a"), id: "second") == second)
                #expect(try await store.cronJob(key: key("b"), id: "second") == nil, "jobs belong to their workspace")
                #expect(try await store.cronJob(key: key("a"), id: "absent") == nil)

                var changed = first
                changed.schedule = "@daily"
                changed.timezone = "UTC"
                changed.overlap = .allow
                changed.enabled = false
                changed.nextRunAt = nil
                changed.runCount = 99  // not the caller's to change
                #expect(try await store.updateCronJob(changed, reschedule: false))
                var expected = first
                (expected.schedule, expected.timezone, expected.overlap, expected.enabled) = ("@daily", "UTC", .allow, false)
                #expect(try await store.cronJob(key: key("a"), id: "first") == expected, "without reschedule nextRunAt stays")
                #expect(try await store.updateCronJob(changed, reschedule: true))
                expected.nextRunAt = nil
                #expect(try await store.cronJob(key: key("a"), id: "first") == expected)
                #expect(try await !store.updateCronJob(cronJob("absent"), reschedule: true))
                #expect(try await store.setCronJobSession(key: key("a"), id: "first", sessionId: "ses_2"))
                #expect(try await store.cronJob(key: key("a"), id: "first")?.sessionId == "ses_2")
                #expect(try await !store.setCronJobSession(key: key("a"), id: "absent", sessionId: "ses_2"))

                #expect(try await store.deleteCronJob(key: key("a"), id: "first"))
                #expect(try await !store.deleteCronJob(key: key("a"), id: "first"))
                #expect(try await store.cronJobs(of: key("a")) == [second])
            }
        }

        @Test(arguments: StoreFactory.all)
        func aTakenIDConflictsWithinItsWorkspaceOnly(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await store.createCronJob(cronJob("j"))
                await expectStoreError(.conflict) { try await store.createCronJob(cronJob("j", next: time(99))) }
                try await store.createCronJob(cronJob("j", of: "b"))
                #expect(try await store.cronJob(key: key("a"), id: "j")?.nextRunAt == time(60))
            }
        }

        @Test(arguments: StoreFactory.all)
        func scheduledJobsAreEveryWaitingJobEarliestFirst(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await store.createCronJob(cronJob("late", of: "a", next: time(300)))
                try await store.createCronJob(cronJob("early", of: "b", next: time(30)))
                try await store.createCronJob(cronJob("none", of: "c", next: nil))
                #expect(try await store.scheduledCronJobs().map(\.id) == ["early", "late"])
            }
        }

        @Test(arguments: StoreFactory.all)
        func aSlotIsClaimedOnceAndOnlyWhenItIsTheStoredOne(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await store.createCronJob(cronJob("j", next: time(60)))
                #expect(try await !store.claimCronSlot(key: key("a"), id: "j", slot: time(59), next: time(120), run: cronRun("r0", job: "j"), retention: 10))
                #expect(try await store.claimCronSlot(key: key("a"), id: "j", slot: time(60), next: time(120), run: cronRun("r1", job: "j"), retention: 10))
                #expect(
                    try await !store.claimCronSlot(key: key("a"), id: "j", slot: time(60), next: time(120), run: cronRun("r2", job: "j"), retention: 10),
                    "the same slot cannot be claimed twice")
                let job = try #require(try await store.cronJob(key: key("a"), id: "j"))
                #expect(job.nextRunAt == time(120) && job.lastRunAt == time(60) && job.runCount == 1)
                #expect(try await store.cronRuns(key: key("a"), jobId: "j", limit: 10).map(\.run.runId) == ["r1"])
                #expect(try await !store.claimCronSlot(key: key("a"), id: "absent", slot: nil, next: nil, run: cronRun("r3", job: "absent"), retention: 10))
                // A run by hand leaves the slot alone; a skipped run is not counted.
                #expect(
                    try await store.claimCronSlot(
                        key: key("a"), id: "j", slot: nil, next: nil, run: cronRun("r4", job: "j", at: time(70), status: .skipped), retention: 10))
                let after = try #require(try await store.cronJob(key: key("a"), id: "j"))
                #expect(after.nextRunAt == time(120) && after.lastRunAt == time(70) && after.runCount == 1)
                // The last slot of a one-shot job: nothing waits after it.
                #expect(try await store.claimCronSlot(key: key("a"), id: "j", slot: time(120), next: nil, run: cronRun("r5", job: "j"), retention: 10))
                #expect(try await store.cronJob(key: key("a"), id: "j")?.nextRunAt == nil)
                #expect(try await store.scheduledCronJobs().isEmpty)
                await expectStoreError(.conflict) {
                    _ = try await store.claimCronSlot(key: key("a"), id: "j", slot: nil, next: nil, run: cronRun("r5", job: "j"), retention: 10)
                }
            }
        }

        @Test(arguments: StoreFactory.all)
        func concurrentClaimsOfOneSlotLetExactlyOneThrough(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await store.createCronJob(cronJob("j", next: time(60)))
                let wins = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for attempt in 0..<16 {
                        group.addTask {
                            try await store.claimCronSlot(
                                key: key("a"), id: "j", slot: time(60), next: time(120), run: cronRun("r\(attempt)", job: "j"), retention: 100)
                        }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                #expect(wins == 1)
                #expect(try await store.cronRuns(key: key("a"), jobId: "j", limit: 100).count == 1)
            }
        }

        @Test(arguments: StoreFactory.all)
        func runsAreNewestFirstUpdatedAndPrunedToTheRetention(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await store.createCronJob(cronJob("j", next: nil))
                try await store.createCronJob(cronJob("k", next: nil))
                for index in 0..<7 {
                    #expect(
                        try await store.claimCronSlot(
                            key: key("a"), id: "j", slot: nil, next: nil, run: cronRun("j\(index)", job: "j", at: time(index)), retention: 5))
                }
                #expect(try await store.claimCronSlot(key: key("a"), id: "k", slot: nil, next: nil, run: cronRun("k0", job: "k"), retention: 5))
                #expect(try await store.cronRuns(key: key("a"), jobId: "j", limit: 100).map(\.run.runId) == ["j6", "j5", "j4", "j3", "j2"])
                #expect(try await store.cronRuns(key: key("a"), jobId: "j", limit: 2).map(\.run.runId) == ["j6", "j5"])
                #expect(try await store.cronRuns(key: key("a"), jobId: "j", limit: 0).isEmpty)
                #expect(try await store.cronRuns(key: key("a"), jobId: "k", limit: 100).map(\.run.runId) == ["k0"], "each job keeps its own")

                var run = cronRun("j6", job: "j", at: time(6)).run
                run.status = .error
                run.endedAt = time(7).addingTimeInterval(0.000_456)
                run.exitCode = 3
                run.stdout = "out"
                run.stderr = "err"
                run.stderrEncoding = .base64
                run.truncated = true
                run.error = "exit code 3"
                #expect(try await store.updateCronRun(CronRunRecord(workspaceKey: key("a"), run: run)))
                let stored = try #require(try await store.cronRun(key: key("a"), jobId: "j", runId: "j6"))
                var withoutTimes = stored.run
                withoutTimes.startedAt = run.startedAt
                withoutTimes.endedAt = run.endedAt
                #expect(withoutTimes == run, "every field round-trips")
                for (read, written) in [(stored.run.startedAt, run.startedAt), (stored.run.endedAt, run.endedAt)] {
                    #expect(abs(try #require(read).timeIntervalSince(try #require(written))) < 0.000_001, "times to the microsecond")
                }
                #expect(try await store.cronRun(key: key("b"), jobId: "j", runId: "j6") == nil)
                #expect(try await !store.updateCronRun(cronRun("j0", job: "j")), "pruned")
            }
        }

        @Test(arguments: StoreFactory.all)
        func unfinishedRunsAreInterrupted(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await store.createCronJob(cronJob("j", next: nil))
                for (id, status) in [("a", CronRunStatus.running), ("b", .queued), ("c", .ok), ("d", .skipped)] {
                    _ = try await store.claimCronSlot(key: key("a"), id: "j", slot: nil, next: nil, run: cronRun(id, job: "j", status: status), retention: 10)
                }
                let interrupted = try await store.interruptCronRuns(endedAt: time(100), error: "stopped")
                #expect(interrupted.map(\.run.runId) == ["a", "b"])
                #expect(interrupted.allSatisfy { $0.run.status == .error && $0.run.endedAt == time(100) && $0.run.error == "stopped" })
                let statuses = try await store.cronRuns(key: key("a"), jobId: "j", limit: 10).map(\.run.status)
                #expect(statuses == [.skipped, .ok, .error, .error])
                #expect(try await store.interruptCronRuns(endedAt: time(200), error: "again").isEmpty)
            }
        }

        @Test(arguments: StoreFactory.all)
        func deletingTheWorkspaceDeletesItsJobsAndRuns(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                try await store.createCronJob(cronJob("j", of: "a"))
                try await store.createCronJob(cronJob("j", of: "b"))
                #expect(try await store.claimCronSlot(key: key("a"), id: "j", slot: nil, next: nil, run: cronRun("ra", job: "j", of: "a"), retention: 10))
                #expect(try await store.claimCronSlot(key: key("b"), id: "j", slot: nil, next: nil, run: cronRun("rb", job: "j", of: "b"), retention: 10))
                #expect(try await store.deleteWorkspace(key: key("a")))
                #expect(try await store.cronJobs(of: key("a")).isEmpty)
                #expect(try await store.cronRuns(key: key("a"), jobId: "j", limit: 10).isEmpty)
                #expect(try await store.cronJobs(of: key("b")).count == 1)
                #expect(try await store.cronRuns(key: key("b"), jobId: "j", limit: 10).count == 1)
                #expect(try await store.scheduledCronJobs().map(\.workspaceKey) == [key("b")])
            }
        }

        @Test(arguments: StoreFactory.durable)
        func jobsAndRunsSurviveReopening(_ factory: StoreFactory) async throws {
            try await factory.withLocation { location throws in
                let store = try await location.open()
                try await store.createCronJob(cronJob("j", next: time(60)))
                #expect(try await store.claimCronSlot(key: key("a"), id: "j", slot: time(60), next: time(120), run: cronRun("r", job: "j"), retention: 10))
                let job = try await store.cronJob(key: key("a"), id: "j")
                try await store.close()
                let reopened = try await location.open()
                #expect(try await reopened.cronJob(key: key("a"), id: "j") == job)
                #expect(try await reopened.cronRuns(key: key("a"), jobId: "j", limit: 10) == [cronRun("r", job: "j")])
                #expect(try await !reopened.claimCronSlot(key: key("a"), id: "j", slot: time(60), next: time(120), run: cronRun("r2", job: "j"), retention: 10))
                try await reopened.close()
            }
        }
    }
}
