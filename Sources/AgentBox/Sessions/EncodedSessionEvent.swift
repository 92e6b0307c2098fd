import AgentBoxAPI
import AgentBoxStore
import Foundation

/// A transcript event together with its JSON as the API sends it, encoded once.
///
/// Live events are encoded when they are stored and shared by every reader, so a thousand SSE subscribers cost one
/// encoding per event, not a thousand; stored events are encoded from their record, with the stored payload text
/// copied as it is.
public struct EncodedSessionEvent: Sendable {
    public let event: SessionEvent
    /// ``SessionEvent`` as JSON (what `AgentBoxJSON`'s encoder would write).
    public let json: [UInt8]

    public var seq: Int64 { event.seq }
    public var type: String { event.type }

    init(_ event: SessionEvent, payloadJSON: [UInt8]) {
        self.event = event
        var json: [UInt8] = []
        json.reserveCapacity(payloadJSON.count + 96)
        SessionEvent.writeJSON(
            seq: event.seq, at: event.at, sender: event.sender.rawValue, type: event.type, payloadJSON: payloadJSON, into: &json)
        self.json = json
    }

    /// A stored event; `nil` when its payload cannot be read.
    init?(_ record: SessionEventRecord) {
        guard let event = AgentSession.decode(record) else { return nil }
        self.init(event, payloadJSON: Array(record.payload.utf8))
    }
}
