import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import CoreMetrics
import Foundation
import Logging
import Synchronization

/// Cron jobs: commands and agent prompts that run on a schedule in a workspace, whether it sleeps or not.
///
/// The store holds each job's next slot (`nextRunAt`) and every run. A slot runs only once it is claimed in the store
/// (``Store/claimCronSlot(key:id:slot:next:run:retention:)``: compare-and-set of `nextRunAt`, and the run recorded, in
/// one transaction), so no slot runs twice, across restarts too; a slot that came while the server was down is
/// claimed when it starts, and runs once however many slots were missed. In memory, one ``CronTimeline`` over every
/// workspace says when the next slot comes, and one loop (``runCronScheduler()``) sleeps until then: idle jobs cost
/// nothing. Runs are activities of their workspace: a due job boots a sleeping workspace and keeps it awake until
/// its run ends.
extension WorkspaceManager {
    /// The default and largest number of runs one `cronRuns` call answers.
    public static let cronRunPageDefault = 20

    // MARK: Jobs

    /// Creates a job in workspace `key` (never boots it).
    public func createCronJob(key: WorkspaceKey, _ request: CronJobRequest) async throws -> CronJob {
        try checkOpen()
        try await requireWorkspace(key)
        let id = try request.id.map(Self.validCronJobID) ?? RandomID.make(prefix: "cron_", length: 12)
        try validate(request.action)
        let now = Date()
        let schedule = try Self.cronSchedule(request.schedule, timezone: request.timezone)
        let enabled = request.enabled ?? true
        let next = schedule.next(after: now)
        if schedule.isOneShot, next == nil {
            throw AgentBoxError(.invalidArgument, "schedule: the instant '\(schedule.expression)' is in the past")
        }
        let count = try await store.cronJobCount(of: key)
        guard count < configuration.cronMaxJobsPerWorkspace else {
            throw AgentBoxError(.conflict, "workspace '\(key)' has \(count) cron jobs, the most allowed; delete one first")
        }
        let record = CronJobRecord(
            workspaceKey: key, id: id, schedule: schedule.expression, timezone: Self.timezoneName(request.timezone), action: request.action,
            overlap: request.overlap ?? .skip, enabled: enabled, createdAt: now, nextRunAt: enabled ? next : nil)
        do {
            try await store.createCronJob(record)
        } catch let error as StoreError where error.code == .conflict {
            throw AgentBoxError(.conflict, "workspace '\(key)' has a cron job '\(id)' already")
        }
        cron.schedule(CronJobRef(key: key, id: id), at: record.nextRunAt)
        return cronJob(record)
    }

    /// The workspace's jobs, oldest first (never boots it).
    public func cronJobs(key: WorkspaceKey) async throws -> CronJobList {
        try checkOpen()
        try await requireWorkspace(key)
        return CronJobList(items: try await store.cronJobs(of: key).map(cronJob))
    }

    /// One job of the workspace.
    public func cronJob(key: WorkspaceKey, id: String) async throws -> CronJob {
        try checkOpen()
        return cronJob(try await cronJobRecord(key: key, id: id))
    }

    /// Changes a job: enables or disables it, gives it a new schedule, time zone or overlap policy. A new schedule,
    /// time zone or enabling counts its next slot from now; disabling drops its next slot.
    public func updateCronJob(key: WorkspaceKey, id: String, _ patch: CronJobPatch) async throws -> CronJob {
        try checkOpen()
        var record = try await cronJobRecord(key: key, id: id)
        let reschedule = patch.schedule != nil || patch.timezone != nil || (patch.enabled.map { $0 != record.enabled } ?? false)
        let schedule = try Self.cronSchedule(patch.schedule ?? record.schedule, timezone: patch.timezone ?? record.timezone)
        record.schedule = schedule.expression
        record.timezone = Self.timezoneName(patch.timezone ?? record.timezone)
        record.overlap = patch.overlap ?? record.overlap
        record.enabled = patch.enabled ?? record.enabled
        if reschedule {
            let next = schedule.next(after: Date())
            if schedule.isOneShot, next == nil, patch.schedule != nil {
                throw AgentBoxError(.invalidArgument, "schedule: the instant '\(schedule.expression)' is in the past")
            }
            record.nextRunAt = record.enabled ? next : nil
        }
        guard try await store.updateCronJob(record, reschedule: reschedule) else { throw Self.cronJobNotFound(key: key, id: id) }
        if reschedule { cron.schedule(CronJobRef(key: key, id: id), at: record.nextRunAt) }
        return cronJob(try await cronJobRecord(key: key, id: id))
    }

    /// Deletes a job and its runs. A run in progress goes on to its end (its record is gone).
    public func deleteCronJob(key: WorkspaceKey, id: String) async throws {
        try checkOpen()
        try await requireWorkspace(key)
        guard try await store.deleteCronJob(key: key, id: id) else { throw Self.cronJobNotFound(key: key, id: id) }
        cron.schedule(CronJobRef(key: key, id: id), at: nil)
    }

    /// Runs a job now, outside its schedule (its overlap policy holds: the run may be queued or skipped). Answers at
    /// once with the run as recorded; ``runCronScheduler()`` executes it.
    public func runCronJob(key: WorkspaceKey, id: String) async throws -> CronRun {
        try checkOpen()
        let record = try await cronJobRecord(key: key, id: id)
        guard let run = try await claim(record, slot: nil, next: nil, trigger: .manual, now: Date()) else {
            throw Self.cronJobNotFound(key: key, id: id)
        }
        return run
    }

    /// The job's latest runs, newest first: at most `limit` (1...``AgentBoxConfiguration/cronRunRetention``).
    public func cronRuns(key: WorkspaceKey, id: String, limit: Int = cronRunPageDefault) async throws -> CronRunList {
        try checkOpen()
        guard (1...max(configuration.cronRunRetention, 1)).contains(limit) else {
            throw AgentBoxError(.invalidArgument, "limit must be 1...\(max(configuration.cronRunRetention, 1)), not \(limit)")
        }
        _ = try await cronJobRecord(key: key, id: id)
        return CronRunList(items: try await store.cronRuns(key: key, jobId: id, limit: limit).map(\.run))
    }

    // MARK: The scheduler

    /// Runs the cron scheduler until cancelled (part of ``runBackgroundWork()``): ends the runs that a stopped server
    /// left unfinished, loads every job's next slot, then sleeps until the earliest one comes, claims it and runs
    /// it. Runs execute as child tasks, at most ``AgentBoxConfiguration/cronMaxConcurrentRuns`` at once; when the
    /// scheduler is cancelled they are cancelled too (a command is killed) and recorded as interrupted.
    public func runCronScheduler() async {
        do {
            let interrupted = try await store.interruptCronRuns(endedAt: Date(), error: "interrupted: the server stopped during the run")
            if !interrupted.isEmpty { logger.warning("cron runs interrupted by a server stop", metadata: ["runs": "\(interrupted.count)"]) }
            for job in try await store.scheduledCronJobs() where job.enabled {
                cron.schedule(CronJobRef(key: job.workspaceKey, id: job.id), at: job.nextRunAt)
            }
        } catch {
            if !Task.isCancelled { logger.error("the cron scheduler cannot read its jobs; no job will run", metadata: ["error": "\(error)"]) }
            return
        }
        logger.debug("cron scheduler started", metadata: ["jobs": "\(cron.scheduledCount)"])
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                for launch in cron.takeLaunches() {
                    group.addTask { await self.execute(launch) }
                }
                for (ref, slot) in cron.takeDue(now: Date()) {
                    group.addTask { await self.fire(ref, slot: slot) }
                }
                await cron.wait(until: cron.nextDue)
            }
        }
    }

    /// A job's slot came: claim it and run (or queue, or skip) it, and schedule the job's next slot.
    private func fire(_ ref: CronJobRef, slot: Date) async {
        do {
            guard let record = try await store.cronJob(key: ref.key, id: ref.id), record.enabled, let stored = record.nextRunAt else { return }
            // In a cluster, the node that serves the workspace (or takes it now) runs its jobs; the others follow the
            // store, a little after the slot, in case that node dies before it runs it.
            if let cluster, case .remote = try await cluster.claim(ref.key) {
                cron.schedule(ref, at: Date().addingTimeInterval(cluster.options.lease.seconds))
                return
            }
            guard abs(stored.timeIntervalSince(slot)) < 1e-6 else {
                // Rescheduled meanwhile: wait for the stored slot instead.
                cron.schedule(ref, at: stored)
                return
            }
            let now = Date()
            let schedule = try Self.cronSchedule(record.schedule, timezone: record.timezone)
            // Slots missed while the server was down collapse into this one run: the next is counted from now.
            let next = schedule.next(after: max(now, slot))
            if try await claim(record, slot: slot, next: next, trigger: .schedule, now: now) == nil {
                // Claimed by someone else, or changed: follow the store.
                let current = try await store.cronJob(key: ref.key, id: ref.id)
                cron.schedule(ref, at: current?.enabled == true ? current?.nextRunAt : nil)
            } else {
                cron.schedule(ref, at: next)
            }
        } catch {
            guard !Task.isCancelled else { return }
            logger.error("a cron slot could not be claimed", metadata: ["workspace.key": "\(ref.key)", "cron.job": "\(ref.id)", "error": "\(error)"])
            // Try the same slot again a little later rather than never.
            cron.schedule(ref, at: Date().addingTimeInterval(5))
        }
    }

    /// Claims a run of `record` in the store (the slot `slot`, or a manual run when `nil`), decided by the job's
    /// overlap policy, and hands it to the scheduler when it is to run now. `nil` when the claim failed.
    private func claim(_ record: CronJobRecord, slot: Date?, next: Date?, trigger: CronRunTrigger, now: Date) async throws -> CronRun? {
        let ref = CronJobRef(key: record.workspaceKey, id: record.id)
        let runId = RandomID.make(prefix: "run_", length: 16)
        let (admission, launch) = cron.admit(ref, overlap: record.overlap) { admission in
            let status: CronRunStatus =
                switch admission {
                case .run: .running
                case .queue: .queued
                case .skip: .skipped
                }
            return CronLaunch(
                ref: ref,
                run: CronRun(
                    runId: runId, jobId: record.id, scheduledAt: slot ?? now, trigger: trigger, startedAt: admission == .run ? now : nil,
                    endedAt: admission == .skip ? now : nil, status: status,
                    error: admission == .skip ? "skipped: the previous run was still running" : nil))
        }
        let claimed: Bool
        do {
            claimed = try await store.claimCronSlot(
                key: ref.key, id: ref.id, slot: slot, next: next, run: CronRunRecord(workspaceKey: ref.key, run: launch.run),
                retention: configuration.cronRunRetention)
        } catch {
            cron.withdraw(ref, admission, runId: runId)
            throw error
        }
        guard claimed else {
            cron.withdraw(ref, admission, runId: runId)
            return nil
        }
        switch admission {
        case .run:
            cron.launch(launch)
        case .skip:
            configuration.metrics.cronSkips.increment()
            await publish(ref, CronEventNotice(jobId: ref.id, runId: runId, kind: .skip))
        case .queue:
            break
        }
        return launch.run
    }

    /// Executes a claimed run, then the run that queued behind it, if any.
    private func execute(_ launch: CronLaunch) async {
        var launch: CronLaunch? = launch
        while let current = launch {
            await cronSlots.acquire()
            await execute(current.ref, current.run)
            cronSlots.release()
            launch = cron.finish(current.ref)
        }
    }

    private func execute(_ ref: CronJobRef, _ claimed: CronRun) async {
        var run = claimed
        let started = ContinuousClock.now
        run.status = .running
        if run.startedAt == nil {
            run.startedAt = Date()
            _ = try? await store.updateCronRun(CronRunRecord(workspaceKey: ref.key, run: run))
        }
        configuration.metrics.cronFires.increment()
        await publish(ref, CronEventNotice(jobId: ref.id, runId: run.runId, kind: .fire))
        do {
            guard let job = try await store.cronJob(key: ref.key, id: ref.id) else { return }  // deleted meanwhile
            switch job.action {
            case .exec(let action): try await runExec(action, key: ref.key, into: &run)
            case .session(let action): try await runSession(action, job: job, into: &run)
            }
        } catch {
            run.status = .error
            run.error = Self.describe(error)
        }
        if Task.isCancelled {
            // The server is stopping: whatever the command or agent made of being stopped, that is why it ended.
            run.status = .error
            run.error = "interrupted: the server stopped during the run"
        }
        run.endedAt = Date()
        let duration = Int((ContinuousClock.now - started).milliseconds)
        do {
            // Recorded even when the run was cancelled (the server is stopping), which a cancelled task's store call
            // would refuse.
            let (store, record) = (store, CronRunRecord(workspaceKey: ref.key, run: run))
            _ = try await Task { try await store.updateCronRun(record) }.value
        } catch {
            logger.error("a cron run's end could not be stored", metadata: ["cron.run": "\(run.runId)", "error": "\(error)"])
        }
        let kind: CronEventNotice.Kind = run.status == .ok ? .complete : .error
        if kind == .error { configuration.metrics.cronErrors.increment() }
        await publish(ref, CronEventNotice(jobId: ref.id, runId: run.runId, kind: kind, durationMs: duration, error: run.error))
    }

    private func runExec(_ action: CronExecAction, key: WorkspaceKey, into run: inout CronRun) async throws {
        let timeout = action.timeoutMs ?? Int(configuration.cronDefaultTimeout.milliseconds)
        let result = try await runtime(for: key).exec(
            ExecRequest(command: action.command, cwd: action.cwd, env: action.env, timeoutMs: timeout, maxOutputBytes: CronRun.maxOutputBytes))
        run.exitCode = result.exitCode
        run.stdout = result.stdout
        run.stderr = result.stderr
        run.stdoutEncoding = result.stdoutEncoding
        run.stderrEncoding = result.stderrEncoding
        run.truncated = result.truncated ? true : nil
        if result.timedOut {
            run.status = .error
            run.error = "timed out after \(timeout) ms"
        } else if result.exitCode != 0 {
            run.status = .error
            run.error = result.signal.map { "killed by signal \($0)" } ?? "exit code \(result.exitCode)"
        } else {
            run.status = .ok
        }
    }

    private func runSession(_ action: CronSessionAction, job: CronJobRecord, into run: inout CronRun) async throws {
        let key = job.workspaceKey
        var sessionId = job.sessionId
        if let id = sessionId {
            if let session = try? await session(key: key, id: id) {
                if session.status == .closed { _ = try await resumeSession(key: key, id: id) }
            } else {
                sessionId = nil  // deleted since: the job makes a new one
            }
        }
        let id: String
        if let sessionId {
            id = sessionId
        } else {
            let session = try await createSession(
                key: key, SessionCreateRequest(agent: action.agent, cwd: action.cwd, model: action.model, mode: action.mode))
            id = session.id
            _ = try await store.setCronJobSession(key: key, id: job.id, sessionId: id)
        }
        run.sessionId = id
        let turn = try await loadSession(key: key, id: id).prompt(PromptRequest(text: action.prompt))
        guard let result = await Self.value(of: turn) else {
            run.status = .error
            run.error = "interrupted: the server stopped during the run"
            return
        }
        run.stopReason = result.stopReason
        if result.stopReason == "error" {
            run.status = .error
            run.error = result.error ?? "the agent's turn failed"
        } else {
            run.status = .ok
        }
    }

    /// The task's value, or `nil` when the waiting task is cancelled first (the turn goes on: a server that stops
    /// stops its agents itself).
    private static func value<T: Sendable>(of task: Task<T, Never>) async -> T? {
        let wait = CancellableWait<T>()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
                if wait.install(continuation) { Task { wait.finish(await task.value) } }
            }
        } onCancel: {
            wait.finish(nil)
        }
    }

    private func publish(_ ref: CronJobRef, _ notice: CronEventNotice) async {
        guard let runtime = try? await runtime(for: ref.key) else { return }
        await runtime.publish(.cronEvent(notice))
    }

    // MARK: Helpers

    private func cronJobRecord(key: WorkspaceKey, id: String) async throws -> CronJobRecord {
        try await requireWorkspace(key)
        guard let record = try await store.cronJob(key: key, id: id) else { throw Self.cronJobNotFound(key: key, id: id) }
        return record
    }

    private func cronJob(_ record: CronJobRecord) -> CronJob {
        CronJob(
            id: record.id, schedule: record.schedule, timezone: record.timezone, action: record.action, overlap: record.overlap,
            enabled: record.enabled, createdAt: record.createdAt, nextRunAt: record.nextRunAt, lastRunAt: record.lastRunAt,
            runCount: record.runCount, running: cron.isRunning(CronJobRef(key: record.workspaceKey, id: record.id)), sessionId: record.sessionId)
    }

    /// Throws `notFound` unless workspace `key` exists; loads nothing (jobs are made and listed for sleeping
    /// workspaces by the thousand, and a loaded runtime would stay resident for its retention).
    static func cronJobNotFound(key: WorkspaceKey, id: String) -> AgentBoxError {
        AgentBoxError(.notFound, "workspace '\(key)' has no cron job '\(id)'")
    }

    static func cronSchedule(_ expression: String, timezone: String?) throws -> CronSchedule {
        guard expression.utf8.count <= 1024 else { throw AgentBoxError(.invalidArgument, "schedule: at most 1024 bytes") }
        if let timezone, timezone.utf8.count > 128 { throw AgentBoxError(.invalidArgument, "timezone: at most 128 bytes") }
        do {
            return try CronSchedule(expression, timeZone: timezone)
        } catch {
            throw AgentBoxError(.invalidArgument, error.detail)
        }
    }

    /// The zone's name as given (Foundation answers `GMT` for `UTC`), `UTC` when none is.
    static func timezoneName(_ given: String?) -> String {
        guard let given, !given.isEmpty else { return "UTC" }
        return given
    }

    static func validCronJobID(_ id: String) throws -> String {
        let allowed = id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2E || byte == 0x5F
                || byte == 0x2D
        }
        guard (1...64).contains(id.utf8.count), allowed else {
            throw AgentBoxError(.invalidArgument, "id: 1-64 characters of A-Z a-z 0-9 . _ - (not '\(id.prefix(80))')")
        }
        return id
    }

    private func validate(_ action: CronAction) throws {
        switch action {
        case .exec(let exec):
            let command = exec.command.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !command.isEmpty, exec.command.utf8.count <= 64 << 10, !exec.command.utf8.contains(0) else {
                throw AgentBoxError(.invalidArgument, "action.command: 1 byte to 64 KiB without NUL")
            }
            if let cwd = exec.cwd, cwd.isEmpty || cwd.utf8.count > 4096 || cwd.utf8.contains(0) {
                throw AgentBoxError(.invalidArgument, "action.cwd: a path of 1...4096 bytes without NUL")
            }
            for (name, value) in exec.env ?? [:] { try WorkspaceRuntime.validateEnvironment(name: name, value: value) }
            if let timeout = exec.timeoutMs, !(1...86_400_000).contains(timeout) {
                throw AgentBoxError(.invalidArgument, "action.timeoutMs: 1...86400000, not \(timeout)")
            }
        case .session(let session):
            guard configuration.agents.contains(where: { $0.id == session.agent }) else {
                throw AgentBoxError(
                    .invalidArgument,
                    "action.agent: unknown agent '\(session.agent.prefix(80))' (known: \(configuration.agents.map(\.id).joined(separator: ", ")))")
            }
            guard !session.prompt.isEmpty, session.prompt.utf8.count <= 256 << 10 else {
                throw AgentBoxError(.invalidArgument, "action.prompt: 1 byte to 256 KiB")
            }
            _ = try Self.sessionSettings(SessionCreateRequest(agent: session.agent, cwd: session.cwd, model: session.model, mode: session.mode))
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? AgentBoxError { return error.message }
        return "\(error)"
    }
}

/// One waiter for a value that may be given up on: the first of ``finish(_:)`` (the value, or `nil` on cancellation)
/// resumes it, later ones do nothing.
private final class CancellableWait<T: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<T?, Never>?, done: Bool)>((nil, false))

    /// Keeps `continuation`; when the wait is already over, resumes it with `nil` and answers `false`.
    func install(_ continuation: CheckedContinuation<T?, Never>) -> Bool {
        let over = state.withLock { state -> Bool in
            if state.done { return true }
            state.continuation = continuation
            return false
        }
        if over { continuation.resume(returning: nil) }
        return !over
    }

    func finish(_ value: T?) {
        let continuation = state.withLock { state -> CheckedContinuation<T?, Never>? in
            guard !state.done else { return nil }
            state.done = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(returning: value)
    }
}
