import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Snapshot routes", .timeLimit(.minutes(2)))
struct SnapshotRouteTests {
    @Test func takeListForkAndDelete() async throws {
        try await withServer { client, manager in
            _ = try await client.execute(uri: "/v1/workspaces/src", method: .put, headers: json, body: ByteBuffer(string: #"{"env":{"A":"1"}}"#))
            _ = try await client.execute(uri: "/v1/workspaces/src/fs/file?path=a.txt", method: .put, body: ByteBuffer(string: "snap me"))
            let taken = try await client.execute(uri: "/v1/workspaces/src/snapshots", method: .post)
            #expect(taken.status == .created)
            let snapshot = try decode(Snapshot.self, taken)
            #expect(snapshot.sizeBytes == 7 && snapshot.workspace.rawValue == "src")
            let list = try decode(SnapshotList.self, try await client.execute(uri: "/v1/workspaces/src/snapshots", method: .get))
            #expect(list.items == [snapshot])

            let fork = try await client.execute(
                uri: "/v1/workspaces/dst", method: .put, headers: json, body: ByteBuffer(string: #"{"fromSnapshot":"\#(snapshot.id)"}"#))
            #expect(fork.status == .created)
            #expect(try decode(Workspace.self, fork).env == ["A": "1"])
            let read = try await client.execute(uri: "/v1/workspaces/dst/fs/file?path=a.txt", method: .get)
            #expect(String(buffer: read.body) == "snap me")
            #expect(try await manager.workspace(key: WorkspaceKey(rawValue: "src")!).state == .sleeping, "nothing booted")

            let deleted = try await client.execute(uri: "/v1/workspaces/src/snapshots/\(snapshot.id)", method: .delete)
            #expect(deleted.status == .noContent)
            #expect(try decode(SnapshotList.self, try await client.execute(uri: "/v1/workspaces/src/snapshots", method: .get)).items.isEmpty)
            let stillThere = try await client.execute(uri: "/v1/workspaces/dst/fs/file?path=a.txt", method: .get)
            #expect(String(buffer: stillThere.body) == "snap me", "a fork keeps its files when the snapshot goes")
        }
    }

    @Test func badSnapshotRequestsAre4xx() async throws {
        try await withServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/s", method: .put)
            _ = try await client.execute(uri: "/v1/workspaces/t", method: .put)
            let other = try decode(Snapshot.self, try await client.execute(uri: "/v1/workspaces/t/snapshots", method: .post))
            let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String)] = [
                ("/v1/workspaces/absent/snapshots", .post, nil, .notFound, "no workspace"),
                ("/v1/workspaces/absent/snapshots", .get, nil, .notFound, "no workspace"),
                ("/v1/workspaces/s/snapshots/nope", .delete, nil, .badRequest, "not a snapshot id"),
                ("/v1/workspaces/s/snapshots/snap-00000000000000000000", .delete, nil, .notFound, "no snapshot"),
                ("/v1/workspaces/s/snapshots/\(other.id)", .delete, nil, .notFound, "no snapshot"),
                ("/v1/workspaces/n", .put, #"{"fromSnapshot":"snap-00000000000000000000"}"#, .notFound, "no snapshot"),
                ("/v1/workspaces/n", .put, #"{"fromSnapshot":"../../etc"}"#, .badRequest, "not a snapshot id"),
                ("/v1/workspaces/n", .put, #"{"fromSnapshot":7}"#, .badRequest, "fromSnapshot"),
                ("/v1/workspaces/s/fs/watch?path=/workspace/absent", .get, nil, .notFound, "does not exist"),
                ("/v1/workspaces/s/fs/watch?path=/etc", .get, nil, .badRequest, "not in the workspace"),
                ("/v1/workspaces/s/fs/watch", .get, nil, .badRequest, "missing query parameter 'path'"),
            ]
            for (uri, method, body, status, detail) in cases {
                let response = try await client.execute(
                    uri: uri, method: method, headers: body == nil ? [:] : json, body: body.map { ByteBuffer(string: $0) })
                #expect(response.status == status, "\(method) \(uri)")
                #expect(response.headers[.contentType] == "application/problem+json", "\(method) \(uri)")
                let problem = try decode(Problem.self, response)
                #expect(problem.detail.contains(detail), "\(method) \(uri): \(problem.detail)")
            }
            let n = try await client.execute(uri: "/v1/workspaces/n", method: .get)
            #expect(n.status == .notFound, "a failed fork leaves no workspace behind")
        }
    }
}
