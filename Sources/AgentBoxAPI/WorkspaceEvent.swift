import Foundation

/// Why a workspace stopped running.
public enum ShutdownReason: String, Codable, Sendable {
    case sleep
    case destroy
    case error
}

/// `vmBooted`: the workspace finished booting.
public struct VMBooted: Codable, Sendable, Equatable {
    /// How long the boot took, in milliseconds.
    public var bootMs: Double
    public init(bootMs: Double) { self.bootMs = bootMs }
}

/// `vmShutdown`: the workspace stopped running.
public struct VMShutdown: Codable, Sendable, Equatable {
    public var reason: ShutdownReason
    public init(reason: ShutdownReason) { self.reason = reason }
}

/// An event on a workspace's stream (`GET /v1/workspaces/{key}/events`).
///
/// Each event has a name (the SSE `event:` field) and a JSON object (the SSE `data:` field). Events this
/// version does not know are kept as ``other(name:data:)`` so that an older client survives a newer server.
public enum WorkspaceEvent: Sendable, Equatable {
    case vmBooted(VMBooted)
    case vmShutdown(VMShutdown)
    case processOutput(ProcessOutputEvent)
    case processExit(ProcessExitEvent)
    case shellData(ShellDataEvent)
    case shellExit(ShellExitEvent)
    case egressDenied(EgressDeniedEvent)
    case cronEvent(CronEventNotice)
    case sessionEvent(SessionEventNotice)
    case permissionRequest(PermissionRequestNotice)
    case other(name: String, data: JSONValue)

    /// The SSE `event:` name.
    public var name: String {
        switch self {
        case .vmBooted: "vmBooted"
        case .vmShutdown: "vmShutdown"
        case .processOutput: "processOutput"
        case .processExit: "processExit"
        case .shellData: "shellData"
        case .shellExit: "shellExit"
        case .egressDenied: "egressDenied"
        case .cronEvent: "cronEvent"
        case .sessionEvent: "sessionEvent"
        case .permissionRequest: "permissionRequest"
        case .other(let name, _): name
        }
    }

    /// Roughly how many bytes the event holds, for memory bounds.
    public var approximateSize: Int {
        switch self {
        case .processOutput(let output): output.data.utf8.count + 64
        case .shellData(let output): output.data.utf8.count + 64
        case .sessionEvent(let notice): notice.event.payload.approximateSize + 96
        default: 64
        }
    }

    /// The SSE `data:` JSON object.
    public func encodedData(using encoder: JSONEncoder = AgentBoxJSON.makeEncoder()) throws -> Data {
        switch self {
        case .vmBooted(let payload): try encoder.encode(payload)
        case .vmShutdown(let payload): try encoder.encode(payload)
        case .processOutput(let payload): try encoder.encode(payload)
        case .processExit(let payload): try encoder.encode(payload)
        case .shellData(let payload): try encoder.encode(payload)
        case .shellExit(let payload): try encoder.encode(payload)
        case .egressDenied(let payload): try encoder.encode(payload)
        case .cronEvent(let payload): try encoder.encode(payload)
        case .sessionEvent(let payload): try encoder.encode(payload)
        case .permissionRequest(let payload): try encoder.encode(payload)
        case .other(_, let data): try encoder.encode(data)
        }
    }

    /// Decodes an event from its SSE name and data.
    public static func decode(
        name: String, data: Data, using decoder: JSONDecoder = AgentBoxJSON.makeDecoder()
    ) throws -> WorkspaceEvent {
        switch name {
        case "vmBooted": .vmBooted(try decoder.decode(VMBooted.self, from: data))
        case "vmShutdown": .vmShutdown(try decoder.decode(VMShutdown.self, from: data))
        case "processOutput": .processOutput(try decoder.decode(ProcessOutputEvent.self, from: data))
        case "processExit": .processExit(try decoder.decode(ProcessExitEvent.self, from: data))
        case "shellData": .shellData(try decoder.decode(ShellDataEvent.self, from: data))
        case "shellExit": .shellExit(try decoder.decode(ShellExitEvent.self, from: data))
        case "egressDenied": .egressDenied(try decoder.decode(EgressDeniedEvent.self, from: data))
        case "cronEvent": .cronEvent(try decoder.decode(CronEventNotice.self, from: data))
        case "sessionEvent": .sessionEvent(try decoder.decode(SessionEventNotice.self, from: data))
        case "permissionRequest": .permissionRequest(try decoder.decode(PermissionRequestNotice.self, from: data))
        default: .other(name: name, data: try decoder.decode(JSONValue.self, from: data))
        }
    }
}

/// A ``WorkspaceEvent`` with its place in the workspace's stream.
public struct WorkspaceEventEnvelope: Sendable, Equatable {
    /// Strictly increasing within a workspace, across sleeps and server restarts; the SSE `id:`.
    public var seq: Int64
    public var event: WorkspaceEvent

    public init(seq: Int64, event: WorkspaceEvent) {
        self.seq = seq
        self.event = event
    }
}
