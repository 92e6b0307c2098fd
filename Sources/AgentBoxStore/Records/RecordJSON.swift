import AgentBoxAPI
import Foundation

/// The JSON forms in which a store keeps the parts of records that have no columns of their own (a workspace's config,
/// a cron job's action, a cron run, a toolkit's tools, a tool call). Dates inside them are seconds since 1970 as JSON
/// numbers, so that they come back exactly as written.
enum RecordJSON {
    static func encode(_ config: WorkspaceConfig) throws -> String {
        String(decoding: try AgentBoxJSON.makeEncoder().encode(config), as: UTF8.self)
    }

    static func config(_ text: String, of owner: String) throws -> WorkspaceConfig {
        do {
            return try AgentBoxJSON.makeDecoder().decode(WorkspaceConfig.self, from: Data(text.utf8))
        } catch {
            throw StoreError(.corrupt, "stored config of \(owner) cannot be read", underlyingError: error)
        }
    }

    static func encode(_ action: CronAction) throws -> String {
        String(decoding: try JSONEncoder().encode(action), as: UTF8.self)
    }

    static func cronAction(_ text: String) -> CronAction? {
        try? JSONDecoder().decode(CronAction.self, from: Data(text.utf8))
    }

    static func encode(_ run: CronRun) throws -> String {
        String(decoding: try exactEncoder.encode(run), as: UTF8.self)
    }

    static func cronRun(_ text: String) -> CronRun? {
        try? exactDecoder.decode(CronRun.self, from: Data(text.utf8))
    }

    static func encode(_ call: ToolCall) throws -> String {
        String(decoding: try exactEncoder.encode(call), as: UTF8.self)
    }

    static func toolCall(_ text: String) -> ToolCall? {
        try? exactDecoder.decode(ToolCall.self, from: Data(text.utf8))
    }

    /// A toolkit's description and tools (handlers' headers included); its name and times are columns.
    static func encodeBody(of toolkit: Toolkit) throws -> String {
        String(decoding: try JSONEncoder().encode(ToolkitBody(description: toolkit.description, tools: toolkit.tools)), as: UTF8.self)
    }

    static func toolkit(name: String, body: String, createdAt: Date, updatedAt: Date) throws -> Toolkit {
        guard let stored = try? JSONDecoder().decode(ToolkitBody.self, from: Data(body.utf8)) else {
            throw StoreError(.corrupt, "stored toolkit '\(name)' cannot be read")
        }
        return Toolkit(name: name, description: stored.description, tools: stored.tools, createdAt: createdAt, updatedAt: updatedAt)
    }

    private struct ToolkitBody: Codable {
        var description: String
        var tools: [ToolDefinition]
    }

    private static var exactEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        return encoder
    }

    private static var exactDecoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }
}
