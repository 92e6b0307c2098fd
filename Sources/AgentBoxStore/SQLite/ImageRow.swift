import AgentBoxAPI
import Foundation
import GRDB

/// The `image` table; `layers` is a JSON array of ids.
struct ImageRow: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "image"

    var name: String
    var id: String
    var createdAt: Double
    var sizeBytes: Int64
    var fromWorkspace: String
    var description: String?
    var layers: String

    init(_ record: ImageRecord) throws {
        name = record.name
        id = record.id
        createdAt = record.createdAt.timeIntervalSince1970
        sizeBytes = record.sizeBytes
        fromWorkspace = record.fromWorkspace.rawValue
        description = record.description
        layers = String(decoding: try JSONEncoder().encode(record.layers), as: UTF8.self)
    }

    func record() throws -> ImageRecord {
        guard let key = WorkspaceKey(rawValue: fromWorkspace),
            let layers = try? JSONDecoder().decode([String].self, from: Data(layers.utf8))
        else { throw StoreError(.corrupt, "stored image '\(name)' cannot be read") }
        return ImageRecord(
            name: name, id: id, createdAt: Date(timeIntervalSince1970: createdAt), sizeBytes: sizeBytes, fromWorkspace: key,
            description: description, layers: layers)
    }
}
