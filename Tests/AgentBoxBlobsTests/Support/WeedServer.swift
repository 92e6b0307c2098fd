import AgentBoxBlobs
import ChildProcessSupport
import Foundation
import WeedSupport

/// A real S3-compatible server for the tests: SeaweedFS's `weed server` (master, volume, filer and S3 gateway in one
/// process) on loopback ports of its own, with a temporary data directory and one S3 identity, so that every request
/// is checked against a SigV4 signature. `AGENTBOX_WEED` names the binary (`bash scripts/setup-s3.sh` installs it);
/// without it the S3 tests are skipped.
///
/// One server per test process, started on first use. A watchdog shell stops it when the test process has ended
/// (exited, crashed or killed).
actor WeedServer {
    static let binary: String? = ProcessInfo.processInfo.environment["AGENTBOX_WEED"].flatMap { $0.isEmpty ? nil : $0 }
    static let skipMessage = "set AGENTBOX_WEED to SeaweedFS's weed (AGENTBOX_WEED=$(bash scripts/setup-s3.sh)) to run the S3 tests"
    static let accessKey = "AGENTBOXTEST"
    static let secretKey = "s3cr3t/with+plus="

    let endpoint: URL
    let directory: TemporaryDirectory
    private let process: ChildProcess
    private var buckets = 0

    private static let shared = SharedServer()

    /// The server of this test process.
    static func running() async throws -> WeedServer {
        try await shared.get()
    }

    /// A configuration for a new, empty bucket of the running server.
    func newBucket(secretKey: String = WeedServer.secretKey) async throws -> S3Configuration {
        buckets += 1
        let configuration = S3Configuration(
            endpoint: endpoint, bucket: "test-\(buckets)-\(UInt32.random(in: 0..<UInt32.max))", region: "us-east-1",
            accessKey: Self.accessKey, secretKey: secretKey)
        if secretKey == Self.secretKey { try await S3Client(configuration: configuration).createBucket() }
        return configuration
    }

    private init(endpoint: URL, directory: TemporaryDirectory, process: ChildProcess) {
        self.endpoint = endpoint
        self.directory = directory
        self.process = process
    }

    private actor SharedServer {
        var server: WeedServer?
        func get() async throws -> WeedServer {
            if let server { return server }
            let started = try await WeedServer.start()
            server = started
            return started
        }
    }

    private static func start() async throws -> WeedServer {
        guard let binary else { throw BlobError(.invalidArgument, skipMessage) }
        let directory = try TemporaryDirectory("weed")
        try WeedLaunch.prepare(directory: directory.path, name: "agentbox", accessKey: accessKey, secretKey: secretKey)
        let ports = try WeedLaunch.freeLoopbackPorts()
        WeedLaunch.removeStaleSockets(ports: ports)
        let arguments = WeedLaunch.arguments(directory: directory.path, ports: ports)
        // The watchdog: weed runs as long as this test process does, and its directory goes with it. weed also
        // listens on /tmp/seaweedfs-*-grpc-<port>.sock, which no option moves and it leaves behind.
        // - The test process counts as gone once it is a zombie: `swift test` reaps it only after the end of its
        //   output, so a watchdog that waited for the reaping (and held that output open) would wait for ever.
        // - The shell's output is not the test process's: it must not keep `swift test` from reading to the end.
        // - No signal is sent to it: the watchdog watches the test process instead (a test process killed outright
        //   sends nothing).
        let sockets = WeedLaunch.socketPatterns(ports: ports).joined(separator: " ")
        let quoted = ([binary] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let script = """
            \(quoted) >'\(directory.path)/weed.log' 2>&1 &
            child=$!
            alive() { state=$(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f1) && [ -n "$state" ] && [ "$state" != Z ]; }
            while alive \(getpid()) && kill -0 $child 2>/dev/null; do sleep 1; done
            kill -9 $child 2>/dev/null; wait $child; rm -rf '\(directory.path)' \(sockets)
            """
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let endpoint = URL(string: WeedLaunch.endpoint(ports: ports))!
        let server = WeedServer(endpoint: endpoint, directory: directory, process: process)
        try await server.waitUntilReady()
        return server
    }

    /// Until a bucket can be made and an object written, read and deleted (the volume server registers with the
    /// master a moment after the S3 port opens).
    private func waitUntilReady() async throws {
        let configuration = S3Configuration(
            endpoint: endpoint, bucket: "readiness", region: "us-east-1", accessKey: Self.accessKey, secretKey: Self.secretKey)
        let client = S3Client(configuration: configuration)
        let deadline = ContinuousClock.now + .seconds(60)
        var last: (any Error)?
        while ContinuousClock.now < deadline {
            guard process.isRunning else { break }
            do {
                try await client.createBucket()
                try await client.putObject("probe", data: Data("ok".utf8))
                _ = try await client.getObject("probe", maxBytes: 16)
                try await client.deleteObject("probe")
                return
            } catch {
                last = error
                try await Task.sleep(for: .milliseconds(250))
            }
        }
        let log = (try? String(contentsOfFile: directory.path + "/weed.log", encoding: .utf8)) ?? ""
        throw BlobError(.io, "weed did not become ready: \(String(describing: last)); its log ends: \(log.suffix(2000))")
    }
}
