import Foundation

/// What a cron job does when it fires.
public enum CronAction: Codable, Sendable, Equatable {
    /// Runs a shell command line (`/bin/sh -c`) in the workspace; the run keeps its exit code and bounded output.
    case exec(CronExecAction)
    /// Prompts an agent session in the workspace: the job's session, created on its first run and reused after.
    case session(CronSessionAction)

    private enum CodingKeys: String, CodingKey { case type }

    public init(from decoder: any Decoder) throws {
        let type = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .type)
        switch type {
        case "exec": self = .exec(try CronExecAction(from: decoder))
        case "session": self = .session(try CronSessionAction(from: decoder))
        default:
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath + [CodingKeys.type], debugDescription: "action.type must be exec or session, not '\(type)'"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .exec(let action):
            try container.encode("exec", forKey: .type)
            try action.encode(to: encoder)
        case .session(let action):
            try container.encode("session", forKey: .type)
            try action.encode(to: encoder)
        }
    }
}

/// `{type:"exec", command, cwd?, env?, timeoutMs?}`.
public struct CronExecAction: Codable, Sendable, Equatable {
    public var command: String
    /// In the workspace's view; default /workspace.
    public var cwd: String?
    public var env: [String: String]?
    /// The command and everything it started are killed after this long (default: the server's cron timeout).
    public var timeoutMs: Int?

    public init(command: String, cwd: String? = nil, env: [String: String]? = nil, timeoutMs: Int? = nil) {
        self.command = command
        self.cwd = cwd
        self.env = env
        self.timeoutMs = timeoutMs
    }
}

/// `{type:"session", agent, prompt, cwd?, model?, mode?}`.
public struct CronSessionAction: Codable, Sendable, Equatable {
    /// The agent's id (`mock`, `claude`, ...).
    public var agent: String
    public var prompt: String
    /// The session's working directory, when the job creates it; default /workspace.
    public var cwd: String?
    public var model: String?
    public var mode: String?

    public init(agent: String, prompt: String, cwd: String? = nil, model: String? = nil, mode: String? = nil) {
        self.agent = agent
        self.prompt = prompt
        self.cwd = cwd
        self.model = model
        self.mode = mode
    }
}

/// What happens when a job's slot comes while its previous run is still running.
public enum CronOverlap: String, Codable, Sendable, CaseIterable {
    /// Runs start regardless.
    case allow
    /// The new slot is recorded as a `skipped` run.
    case skip
    /// The new slot waits for the running one (status `queued`); at most one waits, further slots are skipped.
    case queue
}

/// The body of `POST /v1/workspaces/{key}/cron`.
public struct CronJobRequest: Codable, Sendable, Equatable {
    /// 1–64 characters of `A–Z a–z 0–9 . _ -`; generated when absent.
    public var id: String?
    /// A cron expression (5 fields, or 6 with leading seconds; lists, ranges, steps, names, `@daily` and the other
    /// macros) or an RFC 3339 instant for a job that runs once.
    public var schedule: String
    /// An IANA time zone name; default `UTC`.
    public var timezone: String?
    public var action: CronAction
    /// Default `skip`.
    public var overlap: CronOverlap?
    /// Default `true`.
    public var enabled: Bool?

    public init(
        id: String? = nil, schedule: String, timezone: String? = nil, action: CronAction, overlap: CronOverlap? = nil, enabled: Bool? = nil
    ) {
        self.id = id
        self.schedule = schedule
        self.timezone = timezone
        self.action = action
        self.overlap = overlap
        self.enabled = enabled
    }
}

/// The body of `PATCH /v1/workspaces/{key}/cron/{id}`: what is set changes, the rest stays.
public struct CronJobPatch: Codable, Sendable, Equatable {
    public var enabled: Bool?
    public var schedule: String?
    public var timezone: String?
    public var overlap: CronOverlap?

    public init(enabled: Bool? = nil, schedule: String? = nil, timezone: String? = nil, overlap: CronOverlap? = nil) {
        self.enabled = enabled
        self.schedule = schedule
        self.timezone = timezone
        self.overlap = overlap
    }
}

/// A scheduled job of one workspace.
public struct CronJob: Codable, Sendable, Equatable {
    public var id: String
    public var schedule: String
    public var timezone: String
    public var action: CronAction
    public var overlap: CronOverlap
    public var enabled: Bool
    public var createdAt: Date
    /// The next slot; absent when disabled, or when a one-shot job has run.
    public var nextRunAt: Date?
    /// The slot of the latest run.
    public var lastRunAt: Date?
    /// Runs started, skipped ones not counted.
    public var runCount: Int
    /// Whether a run of it is running now.
    public var running: Bool
    /// The session a `session` job prompts (after its first run).
    public var sessionId: String?

    public init(
        id: String, schedule: String, timezone: String, action: CronAction, overlap: CronOverlap, enabled: Bool, createdAt: Date,
        nextRunAt: Date?, lastRunAt: Date?, runCount: Int, running: Bool, sessionId: String?
    ) {
        self.id = id
        self.schedule = schedule
        self.timezone = timezone
        self.action = action
        self.overlap = overlap
        self.enabled = enabled
        self.createdAt = createdAt
        self.nextRunAt = nextRunAt
        self.lastRunAt = lastRunAt
        self.runCount = runCount
        self.running = running
        self.sessionId = sessionId
    }
}

/// `{items}` of `GET /v1/workspaces/{key}/cron`.
public struct CronJobList: Codable, Sendable, Equatable {
    public var items: [CronJob]
    public init(items: [CronJob]) { self.items = items }
}

/// How a run ended, or that it has not.
public enum CronRunStatus: String, Codable, Sendable, CaseIterable {
    /// Waiting for the job's previous run (overlap `queue`).
    case queued
    case running
    /// The command exited 0, or the agent's turn ended without an error.
    case ok
    /// The command exited non-zero or timed out, the turn failed, or the run could not start.
    case error
    /// Not run: the previous run was still running (overlap `skip`, or a `queue` whose one place was taken).
    case skipped
}

/// Why a run happened.
public enum CronRunTrigger: String, Codable, Sendable {
    /// Its slot came (or was missed while the server was down, and run once after it started).
    case schedule
    /// `POST .../cron/{id}/run`.
    case manual
}

/// One run of a job: a slot that came (or a run asked for by hand) and what came of it.
public struct CronRun: Codable, Sendable, Equatable {
    public var runId: String
    public var jobId: String
    /// The slot it ran for (for a manual run, when it was asked for).
    public var scheduledAt: Date
    public var trigger: CronRunTrigger
    public var startedAt: Date?
    public var endedAt: Date?
    public var status: CronRunStatus
    public var exitCode: Int32?
    /// The command's output, at most ``CronRun/maxOutputBytes`` per stream.
    public var stdout: String?
    public var stderr: String?
    /// Set to `base64` when that stream's output was not valid UTF-8.
    public var stdoutEncoding: OutputEncoding?
    public var stderrEncoding: OutputEncoding?
    /// Set when the output was cut at ``CronRun/maxOutputBytes``.
    public var truncated: Bool?
    public var sessionId: String?
    public var stopReason: String?
    public var error: String?

    /// The most output a run keeps of each stream.
    public static let maxOutputBytes = 16 << 10

    public init(
        runId: String, jobId: String, scheduledAt: Date, trigger: CronRunTrigger, startedAt: Date? = nil, endedAt: Date? = nil,
        status: CronRunStatus, exitCode: Int32? = nil, stdout: String? = nil, stderr: String? = nil, stdoutEncoding: OutputEncoding? = nil,
        stderrEncoding: OutputEncoding? = nil, truncated: Bool? = nil, sessionId: String? = nil, stopReason: String? = nil, error: String? = nil
    ) {
        self.runId = runId
        self.jobId = jobId
        self.scheduledAt = scheduledAt
        self.trigger = trigger
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.status = status
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutEncoding = stdoutEncoding
        self.stderrEncoding = stderrEncoding
        self.truncated = truncated
        self.sessionId = sessionId
        self.stopReason = stopReason
        self.error = error
    }
}

/// `{items}` of `GET /v1/workspaces/{key}/cron/{id}/runs`, newest first.
public struct CronRunList: Codable, Sendable, Equatable {
    public var items: [CronRun]
    public init(items: [CronRun]) { self.items = items }
}

/// `cronEvent` on the workspace's event stream: a run started (`fire`), ended well (`complete`) or badly (`error`),
/// or a slot was skipped (`skip`).
public struct CronEventNotice: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case fire, complete, error, skip
    }

    public var jobId: String
    public var runId: String
    public var kind: Kind
    public var durationMs: Int?
    public var error: String?

    public init(jobId: String, runId: String, kind: Kind, durationMs: Int? = nil, error: String? = nil) {
        self.jobId = jobId
        self.runId = runId
        self.kind = kind
        self.durationMs = durationMs
        self.error = error
    }
}
