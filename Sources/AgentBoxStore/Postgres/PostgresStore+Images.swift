import AgentBoxAPI
import PostgresNIO

extension PostgresStore {
    public func createImage(_ image: ImageRecord) async throws {
        try await write(fence: .none) { connection in
            try await connection.run(
                """
                INSERT INTO image (name, id, created_at, size_bytes, from_workspace, description, layers)
                VALUES (\(image.name), \(image.id), \(PostgresTime(image.createdAt)), \(image.sizeBytes), \(image.fromWorkspace.rawValue),
                    \(image.description)::text, \(image.layers))
                """)
        }
    }

    public func images() async throws -> [ImageRecord] {
        try await read { connection in
            try await connection.rows("SELECT \(unescaped: Self.imageColumns) FROM image ORDER BY name").map(Self.decodeImage)
        }
    }

    public func image(name: String) async throws -> ImageRecord? {
        try await read { connection in
            try await connection.rows("SELECT \(unescaped: Self.imageColumns) FROM image WHERE name = \(name)").first.map(Self.decodeImage)
        }
    }

    public func deleteImage(name: String) async throws -> Bool {
        try await write(fence: .none) { connection in
            try await !connection.rows("DELETE FROM image WHERE name = \(name) RETURNING 1").isEmpty
        }
    }

    public func imageUsers(name: String, id: String) async throws -> (workspaces: [WorkspaceKey], images: [String]) {
        try await read { connection in
            // The config is JSON text: its `image` field is read through jsonb (every workspace's, as SQLite does).
            let keys = try await connection.rows("SELECT key FROM workspace WHERE config::jsonb ->> 'image' = \(name) ORDER BY key")
                .map { try $0.decode(String.self) }
            let images = try await connection.rows("SELECT name FROM image WHERE name <> \(name) AND \(id) = ANY(layers) ORDER BY name")
                .map { try $0.decode(String.self) }
            return (keys.compactMap(WorkspaceKey.init(rawValue:)), images)
        }
    }

    static let imageColumns = "name, id, created_at, size_bytes, from_workspace, description, layers"

    static func decodeImage(_ row: PostgresRow) throws -> ImageRecord {
        let (name, id, createdAt, sizeBytes, from, description, layers) = try row.decode(
            (String, String, PostgresTime, Int64, String, String?, [String]).self)
        guard let key = WorkspaceKey(rawValue: from) else { throw StoreError(.corrupt, "stored image '\(name)' cannot be read") }
        return ImageRecord(
            name: name, id: id, createdAt: createdAt.date, sizeBytes: sizeBytes, fromWorkspace: key, description: description, layers: layers)
    }
}
