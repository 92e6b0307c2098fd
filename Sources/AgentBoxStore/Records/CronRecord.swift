import AgentBoxAPI
import Foundation

/// A cron job as the store keeps it. Its identity is `(workspaceKey, id)`.
public struct CronJobRecord: Sendable, Equatable {
    public var workspaceKey: WorkspaceKey
    public var id: String
    public var schedule: String
    public var timezone: String
    public var action: CronAction
    public var overlap: CronOverlap
    public var enabled: Bool
    public var createdAt: Date
    /// The slot the job waits for; `nil` when it waits for none (disabled, or a one-shot job that has run).
    public var nextRunAt: Date?
    /// The slot of its latest run.
    public var lastRunAt: Date?
    /// Runs started (skipped ones not counted).
    public var runCount: Int
    /// The session a `session` job prompts, once it has made one.
    public var sessionId: String?

    public init(
        workspaceKey: WorkspaceKey, id: String, schedule: String, timezone: String, action: CronAction, overlap: CronOverlap, enabled: Bool,
        createdAt: Date, nextRunAt: Date?, lastRunAt: Date? = nil, runCount: Int = 0, sessionId: String? = nil
    ) {
        self.workspaceKey = workspaceKey
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
        self.sessionId = sessionId
    }
}

/// One run of a cron job as the store keeps it: the run as the API shows it, and its workspace.
public struct CronRunRecord: Sendable, Equatable {
    public var workspaceKey: WorkspaceKey
    public var run: CronRun

    public init(workspaceKey: WorkspaceKey, run: CronRun) {
        self.workspaceKey = workspaceKey
        self.run = run
    }
}
