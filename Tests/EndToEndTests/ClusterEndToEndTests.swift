import AgentBoxAPI
import AgentBoxClient
import ChildProcessSupport
import Foundation
import Testing
import WeedSupport

/// The Postgres server of the test set-up (scripts/setup-postgres.sh) and SeaweedFS's `weed` (scripts/setup-s3.sh).
let clusterPostgresURL = ProcessInfo.processInfo.environment["AGENTBOX_POSTGRES_URL"]
let clusterWeed = ProcessInfo.processInfo.environment["AGENTBOX_WEED"]
/// `AGENTBOX_CLUSTER_E2E=0` leaves the three-node suite out (it runs whenever Postgres and SeaweedFS are there).
let clusterEndToEnd = ProcessInfo.processInfo.environment["AGENTBOX_CLUSTER_E2E"] != "0"

/// Three real `agentbox serve` nodes sharing a real Postgres and a real S3-compatible server, all on loopback.
@Suite(
    "A cluster of three nodes", .enabled(
        if: clusterEndToEnd && canSandbox && clusterPostgresURL != nil && clusterWeed != nil,
        "needs root, bubblewrap, AGENTBOX_POSTGRES_URL and AGENTBOX_WEED (and not AGENTBOX_CLUSTER_E2E=0)"),
    .timeLimit(.minutes(5)))
struct ClusterEndToEndTests {
    static let lease = 3000

    /// Any node answers for any workspace; kill -9 of the owner moves the workspace, with the files of its last
    /// checkpoint and its whole transcript, to the node that gets the next request; a paused owner that lost its
    /// lease serves nothing stale once it runs again.
    @Test func theOwnerDiesAndTheWorkspaceMovesWithItsFilesAndTranscript() async throws {
        let admin = try #require(clusterPostgresURL)
        let database = "ab_cluster_\(UInt32.random(in: 0...UInt32.max))"
        let created = try await runProgram("/usr/bin/psql", [admin, "-q", "-c", "CREATE DATABASE \(database)"])
        #expect(created.status == 0, "\(created.stderr)")
        defer { Task { _ = try? await runProgram("/usr/bin/psql", [admin, "-q", "-c", "DROP DATABASE IF EXISTS \(database) WITH (FORCE)"]) } }
        let url = String(admin[..<admin.lastIndex(of: "/")!]) + "/" + database
        let weed = try await WeedProcess.start()
        defer { weed.stop() }

        try await withTemporaryDirectory { root in
            let uidBase = String(100_000_000 + Int.random(in: 0..<15_000) * 262_144)
            func start(_ index: Int) async throws -> ServerProcess {
                let data = root.appendingPathComponent("node\(index)/data")
                try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
                return try await ServerProcess.start(
                    dataDirectory: data,
                    extraArguments: [
                        "--store", url, "--node-id", "n\(index)", "--lease-ms", String(Self.lease),
                        "--blobs", "s3://cluster?endpoint=\(weed.endpoint)", "--checkpoint-interval-ms", "1000",
                    ],
                    uidBase: uidBase, environment: ["AWS_ACCESS_KEY_ID": WeedProcess.accessKey, "AWS_SECRET_ACCESS_KEY": WeedProcess.secretKey])
            }
            let nodes = [try await start(1), try await start(2), try await start(3)]
            defer { if ProcessInfo.processInfo.environment["AGENTBOX_CLUSTER_LOGS"] != nil { for node in nodes { print(node.log.suffix(6000)) } } }
            let clients = nodes.map { AgentBoxClient(endpoint: $0.endpoint, token: $0.token) }

            // n1 takes the new workspace; n2 and n3 forward to it (files, sessions, events).
            _ = try await clients[0].putWorkspace("w")
            _ = try await clients[0].writeFile("w", path: "/workspace/a.txt", data: Data("one".utf8))
            #expect(String(decoding: try await clients[1].readFileData("w", path: "/workspace/a.txt"), as: UTF8.self) == "one")
            let written = try await clients[2].exec("w", command: "echo two > /workspace/b.txt && hostname")
            #expect(written.exitCode == 0, "\(written)")
            let session = try await clients[1].createSession("w", SessionCreateRequest(agent: "mock"))
            let first = try await clients[2].prompt("w", session.id, PromptRequest(text: "hello"))
            #expect(first.stopReason == "end_turn", "\(first)")
            let transcript = try await clients[0].sessionEventPage("w", session.id, limit: 1000).items
            #expect(!transcript.isEmpty)

            // A preview of n1's workspace, made through n2 and opened through n3: relayed to n1's proxy.
            _ = try await clients[0].spawn(
                "w", SpawnRequest(command: "python3", args: ["-m", "http.server", "8500", "--bind", "127.0.0.1", "--directory", "/workspace"]))
            let preview = try await clients[1].createPreview("w", port: 8500)
            let viaN3 = nodes[2].endpoint.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/preview/\(preview.token)/a.txt"
            #expect(try await NetworkEndToEndTests.get(viaN3) == (200, "one"))

            // Every node lists the workspace as its owner has it: running on n1, then asleep.
            for client in clients.dropFirst() {
                let listed = try await eventually { try await client.workspaces().items.first { $0.key.rawValue == "w" }?.state == .running }
                #expect(listed, "n1's running workspace, listed by another node")
            }

            var status = try await clients[2].cluster()
            #expect(status.node == "n3")
            #expect(status.nodes.map(\.id) == ["n1", "n2", "n3"] && status.nodes.allSatisfy { $0.state == "up" }, "\(status)")
            #expect(status.nodes.first { $0.id == "n1" }?.workspaces == ["w"], "\(status)")

            // A snapshot taken by n1 (asked through n2) goes to the blob store too, and so does an image made on n1
            // (with a file in its system layer).
            let snapshot = try await clients[1].createSnapshot("w")
            let marked = try await clients[0].exec("w", command: "echo from-the-image > /usr/local/share/ab-marker")
            #expect(marked.exitCode == 0, "\(marked)")
            _ = try await clients[0].createImage("tools", fromWorkspace: "w")

            // Sleep checkpoints the files (and the interval does while awake); then the owner dies.
            let before = try await checkpoints(clients[0])
            _ = try await clients[1].sleepWorkspace("w")
            #expect(try await eventually { try await clients[2].workspaces().items.first { $0.key.rawValue == "w" }?.state == .sleeping })
            try await waitForCheckpoint(clients[0], after: before, more: 1)
            await nodes[0].stop(signal: SIGKILL)
            let killed = ContinuousClock.now
            let moved = try await retryingUnavailable { try await clients[1].exec("w", command: "cat /workspace/a.txt /workspace/b.txt") }
            let failover = ContinuousClock.now - killed
            #expect(moved.stdout == "onetwo\n", "\(moved)")
            #expect(failover < .milliseconds(Self.lease) + .seconds(10), "failover took \(failover)")
            print("cluster failover (kill -9 → first exec on another node): \(failover)")

            // n3 forks the dead node's snapshot, from the blob store.
            _ = try await clients[2].forkWorkspace("f", fromSnapshot: snapshot.id)
            let forked = try await clients[2].exec("f", command: "cat /workspace/a.txt /workspace/b.txt; stat -c %U /workspace/a.txt")
            #expect(forked.stdout == "onetwo\nagent\n", "\(forked)")
            // And a workspace made there from the dead node's image has its system layer.
            _ = try await clients[2].putWorkspace("g", config: WorkspaceConfig(image: "tools"))
            let fromImage = try await clients[2].exec("g", command: "cat /usr/local/share/ab-marker")
            #expect(fromImage.stdout == "from-the-image\n", "\(fromImage)")

            // The transcript is whole, and the session goes on on its new node.
            let after = try await clients[2].sessionEventPage("w", session.id, limit: 1000).items
            #expect(after.map(\.seq).prefix(transcript.count) == transcript.map(\.seq)[...])
            let second = try await retryingUnavailable { try await clients[2].prompt("w", session.id, PromptRequest(text: "again")) }
            #expect(second.stopReason == "end_turn", "\(second)")
            status = try await clients[2].cluster()
            #expect(status.nodes.first { $0.id == "n2" }?.workspaces == ["w"], "\(status)")

            // A paused owner: n2 holds the workspace; while it is stopped, n3 waits out its lease and takes over.
            let n2Before = try await checkpoints(clients[1])
            _ = try await clients[1].writeFile("w", path: "/workspace/c.txt", data: Data("three".utf8))
            try await waitForCheckpoint(clients[1], after: n2Before)
            nodes[1].process.signal(SIGSTOP)
            let taken = try await retryingUnavailable { try await clients[2].exec("w", command: "cat /workspace/c.txt; echo four > /workspace/d.txt") }
            #expect(taken.stdout == "three", "\(taken)")
            nodes[1].process.signal(SIGCONT)
            // The stale owner does not serve the workspace from its own (old) files: it forwards to n3.
            let seen = try await retryingUnavailable { try await clients[1].readFileData("w", path: "/workspace/d.txt") }
            #expect(String(decoding: seen, as: UTF8.self) == "four\n")
            status = try await clients[1].cluster()
            #expect(status.nodes.first { $0.id == "n3" }?.workspaces == ["f", "g", "w"], "\(status)")
            #expect(status.nodes.first { $0.id == "n1" }?.state == "down", "\(status)")

            for node in nodes.dropFirst() { await node.stop() }
        }
    }

    /// Waits until `client`'s node has written `atLeast` more checkpoints than none (its metrics say so).
    /// How many checkpoints `client`'s node has written (its metrics say so).
    func checkpoints(_ client: AgentBoxClient) async throws -> Int {
        let text = try await client.serverMetrics()
        let line = text.split(separator: "\n").first { $0.hasPrefix("agentbox_checkpoints_total") }
        return line?.split(separator: " ").last.flatMap { Double($0) }.map { Int($0) } ?? 0
    }

    /// Waits until `client`'s node has written `more` checkpoints than `before`. Of an awake workspace, wait for two:
    /// the second began after the call (one under way when it came may have begun earlier).
    func waitForCheckpoint(_ client: AgentBoxClient, after before: Int, more: Int = 2) async throws {
        let giveUp = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < giveUp {
            if try await checkpoints(client) >= before + more { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("no checkpoint within 30 s")
    }

    /// Whether `condition` holds within 10 s (the owner records its workspace's state a moment after the change).
    func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        let giveUp = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < giveUp {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    /// Runs `body` again while the cluster answers 503 (a node that does not answer yet, a lease still running out).
    func retryingUnavailable<T>(_ body: () async throws -> T) async throws -> T {
        let giveUp = ContinuousClock.now + .seconds(60)
        while true {
            do {
                return try await body()
            } catch let error as AgentBoxClientError where error.status == 503 && ContinuousClock.now < giveUp {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

/// SeaweedFS (`weed server -s3`) on loopback with one identity, so that SigV4 is checked.
final class WeedProcess: Sendable {
    static let accessKey = "agentbox-e2e"
    static let secretKey = "agentbox-e2e-secret"
    let process: ChildProcess
    let endpoint: String
    let directory: URL

    private init(process: ChildProcess, endpoint: String, directory: URL) {
        self.process = process
        self.endpoint = endpoint
        self.directory = directory
    }

    /// Starts weed on free loopback ports, with its local sockets in its own directory (their default paths in /tmp
    /// are shared by every weed on the machine, so a second one there exits at once), trying again on fresh ports if
    /// it exits before it answers (a port taken between the check and weed's bind).
    static func start() async throws -> WeedProcess {
        var said = ""
        for _ in 0..<3 {
            do {
                return try await startOnce()
            } catch let error as ServerStartFailed {
                said = error.message
            }
        }
        throw ServerStartFailed(message: said)
    }

    private static func startOnce() async throws -> WeedProcess {
        let binary = try #require(clusterWeed)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weed-\(UUID())")
        try WeedLaunch.prepare(directory: directory.path, name: "e2e", accessKey: accessKey, secretKey: secretKey)
        let ports = try WeedLaunch.freeLoopbackPorts()
        WeedLaunch.removeStaleSockets(ports: ports)
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = WeedLaunch.arguments(directory: directory.path, ports: ports)
        FileManager.default.createFile(atPath: directory.appendingPathComponent("weed.log").path, contents: nil)
        let log = try FileHandle(forWritingTo: directory.appendingPathComponent("weed.log"))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let weed = WeedProcess(process: process, endpoint: WeedLaunch.endpoint(ports: ports), directory: directory)
        // Ready once the S3 port answers with S3's own XML (the volume server registers a moment later; the nodes'
        // first checkpoint retries through that).
        let giveUp = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < giveUp, process.isRunning {
            let probe = try? await runProgram("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", weed.endpoint + "/"])
            if let code = probe?.stdout, code == "403" || code == "200" { return weed }
            try await Task.sleep(for: .milliseconds(200))
        }
        let exited = process.isRunning ? "" : " (it exited with \(process.terminationStatus))"
        let said = (try? String(contentsOf: directory.appendingPathComponent("weed.log"), encoding: .utf8))?.suffix(2000) ?? ""
        weed.stop()
        throw ServerStartFailed(message: "weed did not start\(exited): \(said)")
    }

    /// SIGTERM, then SIGKILL if weed is still there 5 s later (its graceful stop can hang: runs left weeds behind).
    func stop() {
        if process.isRunning { process.terminate() }
        let giveUp = Date().addingTimeInterval(5)
        while process.isRunning, Date() < giveUp { usleep(50_000) }
        if process.isRunning { process.signal(SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }
}
