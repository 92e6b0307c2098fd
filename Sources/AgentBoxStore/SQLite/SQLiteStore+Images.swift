import AgentBoxAPI
import GRDB

extension SQLiteStore {
    public func createImage(_ image: ImageRecord) async throws {
        let row = try ImageRow(image)
        try await write { db in try row.insert(db) }
    }

    public func images() async throws -> [ImageRecord] {
        try await read { db in try ImageRow.order(Column("name")).fetchAll(db).map { try $0.record() } }
    }

    public func image(name: String) async throws -> ImageRecord? {
        try await read { db in try ImageRow.fetchOne(db, key: name)?.record() }
    }

    public func deleteImage(name: String) async throws -> Bool {
        try await write { db in try ImageRow.deleteOne(db, key: name) }
    }

    public func imageUsers(name: String, id: String) async throws -> (workspaces: [WorkspaceKey], images: [String]) {
        try await read { db in
            let keys = try String.fetchAll(
                db, sql: "SELECT key FROM workspace WHERE json_extract(config, '$.image') = ? ORDER BY key", arguments: [name])
            let images = try String.fetchAll(
                db, sql: "SELECT name FROM image WHERE name != ? AND EXISTS (SELECT 1 FROM json_each(image.layers) WHERE value = ?) ORDER BY name",
                arguments: [name, id])
            return (keys.compactMap(WorkspaceKey.init(rawValue:)), images)
        }
    }
}
