import AgentBoxAPI

/// One row of a workspace's model usage through the LLM gateway: the figures of one model in one session (`session`
/// `nil`: calls made outside any session).
public struct LLMUsageRecord: Sendable, Equatable {
    public var session: String?
    public var model: String
    public var figures: LLMUsageFigures

    public init(session: String?, model: String, figures: LLMUsageFigures) {
        self.session = session
        self.model = model
        self.figures = figures
    }
}
