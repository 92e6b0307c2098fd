import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// `agentbox cron …`: a workspace's scheduled jobs and their runs.
struct CronCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cron", abstract: "Schedule commands and agent prompts in a workspace; list, change, run and delete jobs; see their runs.",
        discussion: """
            Schedules are cron expressions (5 fields, or 6 with leading seconds; lists, ranges, steps, JAN-DEC and
            SUN-SAT names, @hourly @daily @weekly @monthly @yearly) in an IANA time zone (default UTC), or an RFC 3339
            instant for a job that runs once. A due job wakes a sleeping workspace.

            Examples:
              agentbox cron add demo '*/5 * * * *' -- 'date >> /workspace/ticks'
              agentbox cron add demo '0 9 * * MON-FRI' --timezone Europe/Berlin --agent claude --prompt "Summarise yesterday's commits"
              agentbox cron list demo
              agentbox cron get demo JOB_ID
              agentbox cron run demo JOB_ID --wait
              agentbox cron runs demo JOB_ID
              agentbox cron rm demo JOB_ID
            """,
        subcommands: [Add.self, List.self, Get.self, Update.self, Remove.self, Run.self, Runs.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add", abstract: "Schedule a command (after --) or an agent prompt (--agent and --prompt); prints the job's id.",
            discussion: """
                Examples:
                  agentbox cron add demo '@hourly' -- 'cd /workspace && git pull'
                  agentbox cron add demo '30 2 * * *' --timezone America/New_York --overlap queue -- ./nightly.sh
                  agentbox cron add demo 2027-01-01T09:00:00Z --id new-year -- 'echo happy new year'
                  agentbox cron add demo '0 8 * * *' --agent mock --prompt 'good morning'
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "A cron expression or an RFC 3339 instant.") var schedule: String
        @Option(help: "The job's id (default: generated).") var id: String?
        @Option(help: "An IANA time zone, such as Europe/Berlin (default UTC).") var timezone: String?
        @Option(help: "When a slot comes while the last run still runs: allow, skip (default) or queue.") var overlap: String?
        @Option(help: "Prompt this agent's session (made on the first run, reused after) instead of running a command.") var agent: String?
        @Option(help: "The prompt, with --agent.") var prompt: String?
        @Option(help: "The command's (or session's) working directory.") var cwd: String?
        @Option(name: .customLong("timeout-ms"), help: "Kill the command after this long.") var timeoutMs: Int?
        @Flag(help: "Create it disabled.") var disabled = false
        @Flag(help: "Print JSON.") var json = false
        @Argument(parsing: .postTerminator, help: "The command line (run by /bin/sh -c).") var command: [String] = []

        func validate() throws {
            if agent != nil || prompt != nil {
                guard agent != nil, prompt != nil else { throw ValidationError("--agent and --prompt go together") }
                guard command.isEmpty else { throw ValidationError("give a command after -- or --agent and --prompt, not both") }
            } else if command.isEmpty {
                throw ValidationError("give the command after --, or --agent and --prompt")
            }
            if let overlap, CronOverlap(rawValue: overlap) == nil { throw ValidationError("--overlap is allow, skip or queue") }
        }

        func run() async throws {
            let action: CronAction =
                if let agent, let prompt {
                    .session(CronSessionAction(agent: agent, prompt: prompt, cwd: cwd))
                } else {
                    .exec(CronExecAction(command: command.joined(separator: " "), cwd: cwd, timeoutMs: timeoutMs))
                }
            try await runClientCall {
                let job = try await client.makeClient().createCronJob(
                    key,
                    CronJobRequest(
                        id: id, schedule: schedule, timezone: timezone, action: action, overlap: overlap.flatMap(CronOverlap.init(rawValue:)),
                        enabled: disabled ? false : nil))
                if json { return try printJSON(job) }
                print(job.id)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List a workspace's jobs with their next slot.",
            discussion: """
                Example:
                  agentbox cron list demo
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let list = try await client.makeClient().cronJobs(key)
                if json { return try printJSON(list) }
                printRows(
                    [["ID", "SCHEDULE", "TIMEZONE", "ENABLED", "RUNNING", "NEXT", "LAST", "RUNS", "ACTION"]]
                        + list.items.map { job in
                            [
                                job.id, job.schedule, job.timezone, job.enabled ? "yes" : "no", job.running ? "yes" : "no",
                                job.nextRunAt.map(RFC3339.format) ?? "-", job.lastRunAt.map(RFC3339.format) ?? "-", String(job.runCount),
                                CronCommand.describe(job.action),
                            ]
                        })
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "get", abstract: "Show one job, and its latest run with that run's output.",
            discussion: """
                Examples:
                  agentbox cron get demo JOB_ID
                  agentbox cron get demo JOB_ID --json
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The job's id.") var id: String
        @Flag(help: "Print the job as JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let client = try client.makeClient()
                let job = try await client.cronJob(key, id)
                if json { return try printJSON(job) }
                let rows: [(String, String)] = [
                    ("id", job.id), ("schedule", job.schedule), ("timezone", job.timezone), ("action", CronCommand.describe(job.action)),
                    ("overlap", job.overlap.rawValue), ("enabled", job.enabled ? "yes" : "no"), ("running", job.running ? "yes" : "no"),
                    ("next run", job.nextRunAt.map(RFC3339.format) ?? "-"), ("last run", job.lastRunAt.map(RFC3339.format) ?? "-"),
                    ("runs", String(job.runCount)), ("session", job.sessionId ?? "-"), ("created", RFC3339.format(job.createdAt)),
                ]
                for (name, value) in rows { Swift.print("\(name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(value)") }
                if let last = try await client.cronRuns(key, id, limit: 1).items.first {
                    Swift.print("")
                    Swift.print("latest run:")
                    CronCommand.show(last)
                }
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "update", abstract: "Enable, disable or reschedule a job.",
            discussion: """
                Examples:
                  agentbox cron update demo JOB_ID --disable
                  agentbox cron update demo JOB_ID --schedule '0 */2 * * *' --timezone Asia/Tokyo --enable
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The job's id.") var id: String
        @Option(help: "A new cron expression or RFC 3339 instant.") var schedule: String?
        @Option(help: "A new IANA time zone.") var timezone: String?
        @Option(help: "allow, skip or queue.") var overlap: String?
        @Flag(help: "Enable it.") var enable = false
        @Flag(help: "Disable it.") var disable = false
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if enable && disable { throw ValidationError("--enable or --disable, not both") }
            if let overlap, CronOverlap(rawValue: overlap) == nil { throw ValidationError("--overlap is allow, skip or queue") }
        }

        func run() async throws {
            try await runClientCall {
                let job = try await client.makeClient().updateCronJob(
                    key, id,
                    CronJobPatch(
                        enabled: enable ? true : (disable ? false : nil), schedule: schedule, timezone: timezone,
                        overlap: overlap.flatMap(CronOverlap.init(rawValue:))))
                if json { return try printJSON(job) }
                print("\(job.id): \(job.enabled ? "enabled" : "disabled"), next \(job.nextRunAt.map(RFC3339.format) ?? "none")")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Delete a job and its runs.",
            discussion: """
                Example:
                  agentbox cron rm demo JOB_ID
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The job's id.") var id: String

        func run() async throws {
            try await runClientCall {
                try await client.makeClient().deleteCronJob(key, id)
                print("deleted \(id)")
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run", abstract: "Run a job now (its overlap policy holds: a skipped run exits 2); with --wait, wait for the run's end and print it.",
            discussion: """
                Example:
                  agentbox cron run demo JOB_ID --wait
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The job's id.") var id: String
        @Flag(help: "Wait for the run to end; exit 1 when it failed.") var wait = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let client = try client.makeClient()
                // Subscribed before the run starts, so that its end cannot be missed.
                let events = wait ? try await client.events(key) : nil
                var run = try await client.runCronJob(key, id)
                if let events, run.status == .running || run.status == .queued {
                    for try await envelope in events {
                        if case .cronEvent(let notice) = envelope.event, notice.runId == run.runId, notice.kind != .fire { break }
                    }
                    run = try await client.cronRuns(key, id, limit: 100).items.first { $0.runId == run.runId } ?? run
                }
                if json { try printJSON(run) } else { CronCommand.show(run) }
                // Not run (the last run still runs, and the job's overlap policy is skip): not what was asked for.
                if run.status == .skipped { throw ExitCode(2) }
                if wait, run.status == .error { throw ExitCode(1) }
            }
        }
    }

    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "runs", abstract: "A job's latest runs, newest first.",
            discussion: """
                Example:
                  agentbox cron runs demo JOB_ID --limit 5
                  agentbox cron runs demo JOB_ID --limit 1 --output
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "The workspace key.") var key: String
        @Argument(help: "The job's id.") var id: String
        @Option(help: "How many (default 20).") var limit: Int?
        @Flag(help: "Print each run with its output (stdout, then stderr) instead of a table.") var output = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClientCall {
                let list = try await client.makeClient().cronRuns(key, id, limit: limit)
                if json { return try printJSON(list) }
                if output { return list.items.forEach(CronCommand.show) }
                printRows(
                    [["RUN", "SLOT", "TRIGGER", "STATUS", "DURATION", "RESULT"]]
                        + list.items.map { run in
                            [
                                run.runId, RFC3339.format(run.scheduledAt), run.trigger.rawValue, run.status.rawValue,
                                CronCommand.duration(run),
                                CronCommand.result(run),
                            ]
                        })
            }
        }
    }

    static func describe(_ action: CronAction) -> String {
        switch action {
        case .exec(let exec): "exec: " + exec.command.prefix(60)
        case .session(let session): "\(session.agent): " + session.prompt.prefix(60)
        }
    }

    static func duration(_ run: CronRun) -> String {
        guard let started = run.startedAt, let ended = run.endedAt else { return "-" }
        return "\(Int(ended.timeIntervalSince(started) * 1000)) ms"
    }

    static func result(_ run: CronRun) -> String {
        if let error = run.error { return String(error.prefix(80)) }
        if let code = run.exitCode { return "exit \(code)" }
        return run.stopReason ?? ""
    }

    static func show(_ run: CronRun) {
        Swift.print("\(run.runId) \(run.status.rawValue) \(result(run))")
        if let stdout = run.stdout, !stdout.isEmpty { Swift.print(stdout, terminator: stdout.hasSuffix("\n") ? "" : "\n") }
        if let stderr = run.stderr, !stderr.isEmpty { printError(stderr.hasSuffix("\n") ? String(stderr.dropLast()) : stderr) }
    }
}
