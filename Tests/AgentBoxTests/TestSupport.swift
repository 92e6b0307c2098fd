import AgentBox
import AgentBoxAPI
import AgentBoxStore
import Foundation
import Logging

/// A fresh data directory, removed when the test's closure returns.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-test-\(UUID())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

func makeManager(_ directory: URL, idleGrace: Duration = .seconds(60), subscriberBuffer: Int = 256, maxAwake: Int? = nil) throws -> WorkspaceManager {
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    var configuration = AgentBoxConfiguration(dataDirectory: directory, idleGrace: idleGrace, subscriberBufferCapacity: subscriberBuffer)
    configuration.maxAwakeWorkspaces = maxAwake
    return try WorkspaceManager.open(configuration: configuration, store: try SQLiteStore.open(in: directory), logger: logger)
}

func key(_ raw: String) -> WorkspaceKey { WorkspaceKey(rawValue: raw)! }

/// Reads events until `count` have arrived (or the stream ends).
func collect(_ stream: AsyncStream<WorkspaceEventEnvelope>, count: Int) async -> [WorkspaceEventEnvelope] {
    var events: [WorkspaceEventEnvelope] = []
    for await event in stream {
        events.append(event)
        if events.count == count { break }
    }
    return events
}
