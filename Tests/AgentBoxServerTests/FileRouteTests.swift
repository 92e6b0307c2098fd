import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("File routes", .timeLimit(.minutes(2)))
struct FileRouteTests {
    @Test func filesOfASleepingWorkspaceAreReadAndWrittenWithoutBooting() async throws {
        try await withServer { client, manager in
            _ = try await client.execute(uri: "/v1/workspaces/f", method: .put)
            let put = try await client.execute(uri: "/v1/workspaces/f/fs/file?path=notes/a.txt", method: .put, body: ByteBuffer(string: "hello"))
            #expect(put.status == .ok)
            #expect(try decode(FileWriteResult.self, put) == FileWriteResult(path: "/workspace/notes/a.txt", bytesWritten: 5))
            let get = try await client.execute(uri: "/v1/workspaces/f/fs/file?path=/workspace/notes/a.txt", method: .get)
            #expect(String(buffer: get.body) == "hello" && get.headers[.contentType] == "application/octet-stream")
            let list = try decode(FileEntryList.self, try await client.execute(uri: "/v1/workspaces/f/fs/entries?path=/workspace&recursive=true", method: .get))
            #expect(list.items.map(\.path) == ["/workspace/notes", "/workspace/notes/a.txt"])
            #expect(try decode(FileStat.self, try await client.execute(uri: "/v1/workspaces/f/fs/stat?path=notes", method: .get)).type == .directory)
            #expect(try decode(FileExists.self, try await client.execute(uri: "/v1/workspaces/f/fs/exists?path=notes/zzz", method: .get)) == FileExists(exists: false))
            let mkdir = try await client.execute(uri: "/v1/workspaces/f/fs/mkdir", method: .post, headers: json, body: ByteBuffer(string: #"{"path":"/home/agent/x/y","recursive":true}"#))
            #expect(mkdir.status == .noContent)
            let move = try await client.execute(uri: "/v1/workspaces/f/fs/move", method: .post, headers: json, body: ByteBuffer(string: #"{"from":"notes/a.txt","to":"/home/agent/x/y/a.txt"}"#))
            #expect(move.status == .noContent)
            #expect(try await client.execute(uri: "/v1/workspaces/f/fs/entry?path=/home/agent/x&recursive=true", method: .delete).status == .noContent)
            #expect(try await manager.workspace(key: WorkspaceKey(rawValue: "f")!).state == .sleeping, "no file operation booted it")
        }
    }

    @Test func badFileRequestsAre4xx() async throws {
        try await withServer { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/f", method: .put)
            _ = try await client.execute(uri: "/v1/workspaces/f/fs/file?path=dir/file", method: .put, body: ByteBuffer(string: "x"))
            let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String)] = [
                ("/v1/workspaces/f/fs/file", .get, nil, .badRequest, "missing query parameter 'path'"),
                ("/v1/workspaces/f/fs/file?path=a%00b", .get, nil, .badRequest, "NUL"),
                ("/v1/workspaces/f/fs/file?path=/workspace/../../etc/passwd", .get, nil, .forbidden, "climbs above"),
                ("/v1/workspaces/f/fs/file?path=/etc/passwd", .get, nil, .badRequest, "not in the workspace"),
                ("/v1/workspaces/f/fs/file?path=/workspace/absent", .get, nil, .notFound, "does not exist"),
                ("/v1/workspaces/f/fs/file?path=/workspace/dir", .get, nil, .badRequest, "not a regular file"),
                ("/v1/workspaces/f/fs/file?path=/workspace/dir/file/below", .put, "x", .badRequest, "not a directory"),
                ("/v1/workspaces/f/fs/file?path=/workspace", .put, "x", .badRequest, "is a directory"),
                ("/v1/workspaces/f/fs/entries?path=/workspace&maxDepth=0", .get, nil, .badRequest, "maxDepth"),
                ("/v1/workspaces/f/fs/entries?path=/workspace/dir/file", .get, nil, .badRequest, "not a directory"),
                ("/v1/workspaces/f/fs/stat?path=/workspace/absent", .get, nil, .notFound, "does not exist"),
                ("/v1/workspaces/f/fs/mkdir", .post, #"{"path":"/workspace/dir"}"#, .conflict, "already exists"),
                ("/v1/workspaces/f/fs/mkdir", .post, #"{"recursive":true}"#, .badRequest, "missing field 'path'"),
                ("/v1/workspaces/f/fs/move", .post, #"{"from":"/workspace/dir","to":"/workspace/dir/inside"}"#, .badRequest, "Invalid argument"),
                ("/v1/workspaces/f/fs/move", .post, #"{"from":"/workspace","to":"/workspace/x"}"#, .badRequest, "root"),
                ("/v1/workspaces/f/fs/entry?path=/workspace/dir", .delete, nil, .conflict, "not empty"),
                ("/v1/workspaces/f/fs/entry?path=/home/agent", .delete, nil, .badRequest, "root"),
                ("/v1/workspaces/f/fs/entry?path=/workspace/dir&recursive=perhaps", .delete, nil, .badRequest, "recursive"),
                ("/v1/workspaces/nope/fs/stat?path=/workspace", .get, nil, .notFound, "no workspace"),
            ]
            for (uri, method, body, status, fragment) in cases {
                let response = try await client.execute(uri: uri, method: method, headers: body?.hasPrefix("{") == true ? json : [:], body: body.map { ByteBuffer(string: $0) })
                let detail = try expectProblem(response, status)
                #expect(detail.contains(fragment), "\(method) \(uri): \(detail)")
            }
            // The file is intact after all of that.
            #expect(String(buffer: try await client.execute(uri: "/v1/workspaces/f/fs/file?path=dir/file", method: .get).body) == "x")
        }
    }

    @Test(.enabled(if: canSandbox, "needs bubblewrap and root"))
    func aSymlinkAProcessPlantsCannotReachTheHost() async throws {
        try await withServer(sandbox: true) { client, _ in
            _ = try await client.execute(uri: "/v1/workspaces/f", method: .put)
            let exec = try await client.execute(
                uri: "/v1/workspaces/f/exec", method: .post, headers: json,
                body: ByteBuffer(string: #"{"command":"ln -s /etc /workspace/x; ln -s ../../../../../../../.. /workspace/root; mkdir -p /workspace/ok; ln -s ok /workspace/fine"}"#))
            #expect(exec.status == .ok)
            for path in ["/workspace/x/shadow", "/workspace/x/passwd", "/workspace/root/etc/shadow", "/workspace/root/root/.bashrc"] {
                try expectProblem(try await client.execute(uri: "/v1/workspaces/f/fs/file?path=\(path)", method: .get), .forbidden)
            }
            try expectProblem(try await client.execute(uri: "/v1/workspaces/f/fs/file?path=/workspace/x/evil", method: .put, body: ByteBuffer(string: "x")), .forbidden)
            #expect(try await client.execute(uri: "/v1/workspaces/f/fs/file?path=/workspace/fine/f", method: .put, body: ByteBuffer(string: "ok")).status == .ok)
            // Upload and archive run inside the workspace; an archive member with .. is refused by tar.
            let archive = try await client.execute(uri: "/v1/workspaces/f/fs/archive?path=/workspace/ok", method: .get)
            #expect(archive.status == .ok && archive.headers[.contentType] == "application/x-tar")
            let upload = try await client.execute(uri: "/v1/workspaces/f/fs/upload?path=/workspace/copy", method: .post, body: archive.body)
            #expect(upload.status == .ok)
            #expect(try decode(UploadResult.self, upload).paths == ["/workspace/copy/f"])
            #expect(String(buffer: try await client.execute(uri: "/v1/workspaces/f/fs/file?path=/workspace/copy/f", method: .get).body) == "ok")
            // Unpacked files belong to the agent user, as a file PUT makes does, even in a directory root made.
            let again = try await client.execute(uri: "/v1/workspaces/f/fs/upload?path=/workspace/ok", method: .post, body: archive.body)
            #expect(again.status == .ok)
            let owners = try await client.execute(
                uri: "/v1/workspaces/f/exec", method: .post, headers: json,
                body: ByteBuffer(string: #"{"command":"stat -c '%u:%g' /workspace/copy/f /workspace/ok/f /workspace/fine/f; stat -c %u /workspace/ok"}"#))
            #expect(try decode(ExecResult.self, owners).stdout == "1000:1000\n1000:1000\n1000:1000\n0\n")
            // A directory that exists keeps its own mode: the archive's `./` (0777 here) does not open it.
            _ = try await client.execute(
                uri: "/v1/workspaces/f/exec", method: .post, headers: json,
                body: ByteBuffer(string: #"{"command":"mkdir -p /workspace/wide /workspace/private && chmod 777 /workspace/wide && echo a > /workspace/wide/a && chmod 700 /workspace/private"}"#))
            let wide = try await client.execute(uri: "/v1/workspaces/f/fs/archive?path=/workspace/wide", method: .get)
            #expect(try await client.execute(uri: "/v1/workspaces/f/fs/upload?path=/workspace/private", method: .post, body: wide.body).status == .ok)
            let modes = try await client.execute(
                uri: "/v1/workspaces/f/exec", method: .post, headers: json, body: ByteBuffer(string: #"{"command":"stat -c %a /workspace/private; cat /workspace/private/a"}"#))
            #expect(try decode(ExecResult.self, modes).stdout == "700\na\n")
            let garbage = try await client.execute(uri: "/v1/workspaces/f/fs/upload?path=/workspace/bad", method: .post, body: ByteBuffer(string: "this is not a tar archive"))
            #expect(try expectProblem(garbage, .badRequest).contains("tar"))
        }
    }
}
