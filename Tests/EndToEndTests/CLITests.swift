import AgentBoxAPI
import ArgumentParser
import Foundation
import Testing

@testable import agentbox

@Suite("The agentbox CLI", .timeLimit(.minutes(2)))
struct CLITests {
    @Test func workspaceCommandsAgainstARealServer() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let cli = CLI(server)

            let created = try await cli("workspaces", "create", "cli-demo", "--memory-mb", "300", "--env", "A=1")
            #expect(created.status == 0)
            #expect(created.stdout.contains("created cli-demo"))
            #expect(try await cli("workspaces", "create", "cli-demo").stdout.contains("exists"))

            let info = try await cli("workspaces", "info", "cli-demo")
            let workspace = try AgentBoxJSON.makeDecoder().decode(Workspace.self, from: Data(info.stdout.utf8))
            #expect(workspace.limits.memoryMb == 300 && workspace.env == ["A": "1"])

            let list = try await cli("workspaces", "list")
            #expect(list.stdout.contains("KEY") && list.stdout.contains("cli-demo") && list.stdout.contains("sleeping"))

            #expect(try await cli("workspaces", "wake", "cli-demo").stdout.contains("running"))
            let events = try await cli("events", "cli-demo", "--after", "0", "--count", "1")
            #expect(events.status == 0)
            #expect(events.stdout.contains("vmBooted"))
            #expect(try await cli("workspaces", "sleep", "cli-demo").stdout.contains("sleeping"))

            #expect(try await cli("workspaces", "delete", "cli-demo").status == 0)
            let missing = try await cli("workspaces", "info", "cli-demo")
            #expect(missing.status == 1)
            #expect(missing.stderr.contains("no workspace 'cli-demo'"))

            let badKey = try await cli("workspaces", "create", "bad key")
            #expect(badKey.status == 1)
            #expect(badKey.stderr.contains("workspace key"))

            let unauthorized = try await AgentBoxBinary.run(
                ["workspaces", "list", "--endpoint", server.endpoint.absoluteString, "--token", "wrong"])
            #expect(unauthorized.status == 1)
            #expect(unauthorized.stderr.contains("wrong bearer token"))
            await server.stop()
        }
    }

    /// `fs put`, `fs get` and single-file `cp` stream local files through the client; a failed download leaves
    /// the local file as it was.
    @Test func filesMoveBetweenLocalFilesAndAWorkspace() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let cli = CLI(server)
            let local = data.deletingLastPathComponent().appendingPathComponent("cli-files-\(UUID())")
            try FileManager.default.createDirectory(at: local, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: local) }
            // Larger than one 256 KiB chunk, so the upload takes several reads.
            let bytes = Data((0..<600_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            try bytes.write(to: local.appendingPathComponent("in.bin"))

            #expect(try await cli("workspaces", "create", "files").status == 0)
            let put = try await cli("fs", "put", "files", "/workspace/in.bin", local.appendingPathComponent("in.bin").path)
            #expect(put.status == 0 && put.stdout.contains("wrote 600000 bytes"), "\(put)")
            let get = try await cli("fs", "get", "files", "/workspace/in.bin", local.appendingPathComponent("out.bin").path)
            #expect(get.status == 0, "\(get)")
            #expect(try Data(contentsOf: local.appendingPathComponent("out.bin")) == bytes)

            let copied = try await cli("cp", local.appendingPathComponent("in.bin").path, "files:/workspace/copy.bin")
            #expect(copied.stdout.contains("copied 600000 bytes"), "\(copied)")
            #expect(try await cli("cp", "files:/workspace/copy.bin", local.appendingPathComponent("back.bin").path).status == 0)
            #expect(try Data(contentsOf: local.appendingPathComponent("back.bin")) == bytes)

            #expect(try await cli("fs", "put", "files", "/workspace/note.txt", local.appendingPathComponent("missing").path).status != 0)
            try Data("keep me".utf8).write(to: local.appendingPathComponent("kept.txt"))
            let missing = try await cli("fs", "get", "files", "/workspace/nothing.txt", local.appendingPathComponent("kept.txt").path)
            #expect(missing.status == 1)
            #expect(try String(contentsOf: local.appendingPathComponent("kept.txt"), encoding: .utf8) == "keep me")

            try Data("hello\n".utf8).write(to: local.appendingPathComponent("hello.txt"))
            _ = try await cli("fs", "put", "files", "/workspace/hello.txt", local.appendingPathComponent("hello.txt").path)
            #expect(try await cli("fs", "get", "files", "/workspace/hello.txt", "-").stdout == "hello\n")
            #expect(try await cli("fs", "cat", "files", "/workspace/hello.txt").stdout == "hello\n")
            await server.stop()
        }
    }

    /// `cp`'s workspace side: keys may hold colons (the last colon before the first slash ends the key).
    @Test(arguments: [
        ("demo:/workspace/src", "demo", "/workspace/src"), ("team:alice:/workspace/a:b", "team:alice", "/workspace/a:b"),
        ("team:alice:src", "team:alice", "src"), ("k:", "k", ""),
    ])
    func cpSplitsKeyAndPath(text: String, key: String, path: String) {
        let split = CpCommand.remote(text)
        #expect(split?.0 == key && split?.1 == path, "\(String(describing: split))")
    }

    @Test(arguments: ["./src", "/tmp/a:b", "src/a:b", ":/workspace", "plain"])
    func cpTakesLocalPaths(text: String) {
        #expect(CpCommand.remote(text) == nil)
    }

    @Test func versionAndHelp() async throws {
        let version = try await AgentBoxBinary.run(["--version"])
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == agentBoxVersion)
        let help = try await AgentBoxBinary.run(["--help"])
        #expect(help.stdout.contains("serve") && help.stdout.contains("workspaces") && help.stdout.contains("events"))
    }

    /// Every command's help shows how to call it. `serve`, `mock-agent` and `dev` are the server's side of the binary
    /// (their files are not the client's), so they are not held to this here. Walks the command tree in process:
    /// ~60 launches of the binary overran the time limit on a loaded machine.
    @Test func everyClientCommandHasHelpWithAnExample() {
        let serverSide: Set<String> = []
        var checked = 0
        func walk(_ command: any ParsableCommand.Type, _ path: [String]) {
            let name = path.joined(separator: " ")
            if !serverSide.contains(name) {
                #expect(command.configuration.discussion.contains("Example"), "agentbox \(name) --help shows no example")
                checked += 1
            }
            for subcommand in command.configuration.subcommands {
                walk(subcommand, path + [subcommand.configuration.commandName ?? subcommand._commandName])
            }
        }
        walk(AgentBoxCommand.self, [])
        #expect(checked > 40)
    }

    /// The CLI talks to a server only through AgentBoxClient: no HTTP or WebSocket client of its own. (Package.swift
    /// no longer lists them for the target, but a transitive module can still be imported, so look at the sources.)
    @Test func theCLIUsesOnlyTheClient() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/agentbox")
        let files = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter { $0.hasSuffix(".swift") }
        #expect(files.count > 5)
        let forbidden = [
            "import AsyncHTTPClient", "import HummingbirdWSClient", "import WSClient", "import NIOHTTP1", "URLSession", "HTTPClientRequest",
            "HTTPClientResponse", "WebSocketClient",
        ]
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for word in forbidden {
                #expect(!text.contains(word), "Sources/agentbox/\(file) uses \(word); add a client method instead")
            }
        }
    }

    /// A private range for egress is the admin's explicit choice, so a block that is not what it says is refused.
    @Test func serveRefusesAnEgressRangeWithHostBits() async throws {
        for range in ["10.0.0.1/8", "10.0.0.0/33", "example.com"] {
            let refused = try await AgentBoxBinary.run(["serve", "--port", "0", "--egress-allow-private", range])
            #expect(refused.status != 0 && refused.stderr.contains("--egress-allow-private"), "\(range): \(refused.stderr)")
        }
    }
}

/// `agentbox` pointed at one server through AGENTBOX_ENDPOINT and AGENTBOX_TOKEN: `try await cli("ps", "demo")`.
struct CLI {
    let environment: [String: String]

    init(_ server: ServerProcess) {
        environment = ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!]
    }

    func callAsFunction(_ arguments: String...) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await AgentBoxBinary.run(arguments, environment: environment)
    }
}
