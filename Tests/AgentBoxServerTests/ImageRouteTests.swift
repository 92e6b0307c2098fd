import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOFoundationEssentialsCompat
import Testing

@Suite("Image routes")
struct ImageRouteTests {
    static func body(_ value: some Encodable) throws -> ByteBuffer {
        ByteBuffer(data: try AgentBoxJSON.makeEncoder().encode(value))
    }

    @Test func imagesAreMadeListedUsedAndGuardedWhileInUse() async throws {
        try await withServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/builder", method: .put, headers: json, body: ByteBuffer(string: "{}"))
            let created = try await client.execute(
                uri: "/v1/images", method: .post, headers: json,
                body: try Self.body(CreateImageRequest(name: "tools", fromWorkspace: WorkspaceKey(rawValue: "builder")!, description: "d")))
            #expect(created.status == .created)
            let image = try decode(Image.self, created)
            #expect(image.name == "tools" && image.fromWorkspace.rawValue == "builder" && image.description == "d")

            let again = try await client.execute(
                uri: "/v1/images", method: .post, headers: json,
                body: try Self.body(CreateImageRequest(name: "tools", fromWorkspace: WorkspaceKey(rawValue: "builder")!)))
            try expectProblem(again, .conflict)

            let list = try decode(ImageList.self, try await client.execute(uri: "/v1/images", method: .get))
            #expect(list.items.map(\.name) == ["tools"])
            #expect(try decode(Image.self, try await client.execute(uri: "/v1/images/tools", method: .get)) == image)

            let made = try await client.execute(
                uri: "/v1/workspaces/job", method: .put, headers: json, body: ByteBuffer(string: #"{"image":"tools"}"#))
            #expect(made.status == .created)
            #expect(try decode(Workspace.self, made).image == "tools")
            try expectProblem(try await client.execute(uri: "/v1/images/tools", method: .delete), .conflict)

            #expect(try await client.execute(uri: "/v1/workspaces/job", method: .delete).status == .noContent)
            #expect(try await client.execute(uri: "/v1/images/tools", method: .delete).status == .noContent)
            try expectProblem(try await client.execute(uri: "/v1/images/tools", method: .get), .notFound)
            try expectProblem(try await client.execute(uri: "/v1/images/tools", method: .delete), .notFound)
        }
    }

    @Test func badRequestsGetClearProblems() async throws {
        try await withServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/builder", method: .put, headers: json, body: ByteBuffer(string: "{}"))
            for name in ["", "Tools", "-x", "a/b", String(repeating: "a", count: 65), "ü"] {
                let response = try await client.execute(
                    uri: "/v1/images", method: .post, headers: json,
                    body: ByteBuffer(string: #"{"name":\#(String(decoding: try JSONEncoder().encode(name), as: UTF8.self)),"fromWorkspace":"builder"}"#))
                try expectProblem(response, .badRequest)
            }
            let unknown = try await client.execute(
                uri: "/v1/images", method: .post, headers: json, body: ByteBuffer(string: #"{"name":"x","fromWorkspace":"absent"}"#))
            try expectProblem(unknown, .notFound)
            let long = try await client.execute(
                uri: "/v1/images", method: .post, headers: json,
                body: try Self.body(CreateImageRequest(name: "x", fromWorkspace: WorkspaceKey(rawValue: "builder")!, description: String(repeating: "d", count: 2000))))
            #expect(long.status.code >= 400 && long.status.code < 500)
            for body in ["", "{", "[]", #"{"name":"x"}"#, #"{"name":1,"fromWorkspace":"builder"}"#] {
                let response = try await client.execute(uri: "/v1/images", method: .post, headers: json, body: ByteBuffer(string: body))
                try expectProblem(response, .badRequest)
            }
            let fromNothing = try await client.execute(
                uri: "/v1/workspaces/job", method: .put, headers: json, body: ByteBuffer(string: #"{"image":"absent"}"#))
            try expectProblem(fromNothing, .notFound)
            try expectProblem(try await client.execute(uri: "/v1/images/Bad%20Name", method: .get), .notFound)
            #expect(try decode(ImageList.self, try await client.execute(uri: "/v1/images", method: .get)).items.isEmpty)
        }
    }
}
