import AgentBox
import AgentBoxAPI
import ChildProcessSupport
import Foundation
import Testing

/// Software installs in a workspace, as an agent would do them, with no internet: a Debian package from a local apt
/// repository and a Python package from a local index, both served by the host and reached through the host alias
/// under the egress policy.
@Suite("Package installs", .enabled(if: Host.canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(3)))
struct PackageInstallTests {
    @Test func aptAndPipInstallIntoTheWorkspaceAloneAndLastAcrossSleepAndRestart() async throws {
        try await withTemporaryDirectory { directory in
            let repository = try LocalPackageRepository(in: directory.appendingPathComponent("repository"))
            defer { repository.stop() }
            let alias = "host.agentbox.internal:\(repository.port)"
            let base = 100_000_000 + UInt32.random(in: 0..<15_000) * 262_144
            func configure(_ configuration: inout AgentBoxConfiguration) {
                configuration.sandboxUIDBase = base
                configuration.egressAllowedPrivateRanges = HostHTTPServer.externalAddress.flatMap { IPNetwork($0) }.map { [$0] } ?? []
            }
            let data = directory.appendingPathComponent("data")
            let config = WorkspaceConfig(network: NetworkPolicy(egress: .allowList([alias])))
            let manager = try makeManager(data, configure: configure)
            let install = try await manager.run(
                "installer",
                """
                set -e
                rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*
                echo 'deb [trusted=yes] http://\(alias)/apt ./' > /etc/apt/sources.list.d/local.list
                apt-get update -q 2>&1 | tail -3
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q agentbox-hello 2>&1 | tail -3
                agentbox-hello
                dpkg -s agentbox-hello | grep Status
                pip install -q --trusted-host host.agentbox.internal --index-url http://\(alias)/simple/ agentbox-greeting 2>&1 | tail -3
                python3 -c 'import agentbox_greeting; print(agentbox_greeting.GREETING)'
                if command -v npm >/dev/null; then
                  mkdir -p /tmp/npm-hello/bin && cd /tmp/npm-hello
                  printf '{"name":"agentbox-npm-hello","version":"1.0.0","bin":{"agentbox-npm-hello":"bin/hello.js"}}' > package.json
                  printf '#!/usr/bin/env node\\nconsole.log("hello from npm")\\n' > bin/hello.js
                  npm pack >/dev/null 2>&1 && npm install -g --offline --no-audit --no-fund ./agentbox-npm-hello-1.0.0.tgz >/dev/null 2>&1
                  cd / && rm -rf /tmp/npm-hello && agentbox-npm-hello
                else
                  echo hello from npm
                fi
                """, timeoutMs: 120_000, config: config)
            #expect(install.exitCode == 0, "\(install.stdout)\(install.stderr)")
            #expect(install.stdout.contains("hello from a package"), "\(install.stdout)")
            #expect(install.stdout.contains("Status: install ok installed"), "\(install.stdout)")
            #expect(install.stdout.contains("greetings from an index"), "\(install.stdout)")
            #expect(install.stdout.contains("hello from npm"), "npm install -g of a local package: \(install.stdout)")

            let check = "agentbox-hello; python3 -c 'import agentbox_greeting; print(agentbox_greeting.GREETING)'"
            let npmCheck = try await manager.run("installer", "command -v npm >/dev/null && agentbox-npm-hello || echo hello from npm")
            #expect(npmCheck.stdout == "hello from npm\n", "\(npmCheck)")
            // Asleep and awake again: the system layer is the workspace's, like its files.
            try await manager.runtime(for: key("installer")).sleep()
            let woken = try await manager.run("installer", check)
            #expect(woken.stdout == "hello from a package\ngreetings from an index\n", "\(woken)")
            // A neighbour sees nothing of it, and neither does the host.
            let neighbour = try await manager.run("neighbour", "command -v agentbox-hello || echo absent; dpkg -s agentbox-hello 2>&1 | head -1; python3 -c 'import agentbox_greeting' 2>&1 | tail -1")
            #expect(neighbour.stdout.hasPrefix("absent\n"), "\(neighbour.stdout)")
            #expect(neighbour.stdout.contains("is not installed"), "\(neighbour.stdout)")
            #expect(neighbour.stdout.contains("No module named 'agentbox_greeting'"), "\(neighbour.stdout)")
            #expect(!FileManager.default.fileExists(atPath: "/usr/bin/agentbox-hello"), "the host's /usr is unchanged")
            #expect(!((try? String(contentsOfFile: "/var/lib/dpkg/status", encoding: .utf8)) ?? "").contains("agentbox-hello"))

            // An image of it: a workspace made from the image has the packages (and dpkg knows them); the image is
            // kept while that workspace uses it.
            let image = try await manager.createImage(CreateImageRequest(name: "tools", fromWorkspace: key("installer")))
            #expect(image.sizeBytes > 0)
            _ = try await manager.create(key: key("from-image"), config: WorkspaceConfig(image: "tools"))
            let fromImage = try await manager.run("from-image", check + "; dpkg -s agentbox-hello | grep Status; id -u")
            #expect(fromImage.stdout == "hello from a package\ngreetings from an index\nStatus: install ok installed\n0\n", "\(fromImage)")
            await #expect(throws: AgentBoxError.self) { try await manager.deleteImage(name: "tools") }
            #expect(!FileManager.default.fileExists(atPath: "/usr/bin/agentbox-hello"), "the host's /usr is still unchanged")
            await manager.shutdown()

            // A server restart (a new manager on the same data directory) finds it all again.
            let restarted = try makeManager(data, configure: configure)
            let again = try await restarted.run("installer", check)
            #expect(again.stdout == "hello from a package\ngreetings from an index\n", "\(again)")
            let imageAgain = try await restarted.run("from-image", check)
            #expect(imageAgain.stdout == "hello from a package\ngreetings from an index\n", "\(imageAgain)")
            await restarted.shutdown()
        }
    }
}

/// A Debian repository (one package built here with dpkg-deb) and a Python "simple" index (one wheel), served over
/// HTTP by `python3 -m http.server` on all of the host's addresses.
final class LocalPackageRepository: @unchecked Sendable {
    let port: Int
    private let server: ChildProcess

    init(in directory: URL) throws {
        let files = FileManager.default
        let package = directory.appendingPathComponent("build/agentbox-hello")
        let apt = directory.appendingPathComponent("apt")
        try files.createDirectory(at: package.appendingPathComponent("DEBIAN"), withIntermediateDirectories: true)
        try files.createDirectory(at: package.appendingPathComponent("usr/bin"), withIntermediateDirectories: true)
        try files.createDirectory(at: apt, withIntermediateDirectories: true)
        try "Package: agentbox-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: AgentBox tests <tests@agentbox.invalid>\nDescription: says hello\n"
            .write(to: package.appendingPathComponent("DEBIAN/control"), atomically: true, encoding: .utf8)
        let program = package.appendingPathComponent("usr/bin/agentbox-hello")
        try "#!/bin/sh\necho hello from a package\n".write(to: program, atomically: true, encoding: .utf8)
        chmod(program.path, 0o755)
        try Self.run("/usr/bin/dpkg-deb", ["--root-owner-group", "--build", package.path, apt.appendingPathComponent("agentbox-hello_1.0_all.deb").path])
        let packages = try Self.run("/usr/bin/dpkg-scanpackages", ["."], in: apt)
        try packages.write(to: apt.appendingPathComponent("Packages"), atomically: true, encoding: .utf8)

        // The wheel: a zip that pip installs as is.
        let simple = directory.appendingPathComponent("simple/agentbox-greeting")
        try files.createDirectory(at: simple, withIntermediateDirectories: true)
        let wheel = "agentbox_greeting-1.0-py3-none-any.whl"
        try Self.run("/usr/bin/python3", ["-c", """
            import base64, hashlib, sys, zipfile
            files = {
                "agentbox_greeting/__init__.py": "GREETING = 'greetings from an index'\\n",
                "agentbox_greeting-1.0.dist-info/METADATA": "Metadata-Version: 2.1\\nName: agentbox-greeting\\nVersion: 1.0\\n",
                "agentbox_greeting-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\\nGenerator: agentbox-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
            }
            record = ""
            with zipfile.ZipFile(sys.argv[1], "w") as archive:
                for name, text in files.items():
                    data = text.encode()
                    archive.writestr(name, data)
                    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                    record += "%s,sha256=%s,%d\\n" % (name, digest, len(data))
                record += "agentbox_greeting-1.0.dist-info/RECORD,,\\n"
                archive.writestr("agentbox_greeting-1.0.dist-info/RECORD", record)
            """, simple.appendingPathComponent(wheel).path])
        try "<html><body><a href=\"\(wheel)\">\(wheel)</a></body></html>\n"
            .write(to: simple.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)

        // Port 0: the server prints the one it got.
        server = ChildProcess()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = ["-u", "-m", "http.server", "0", "--bind", "0.0.0.0", "--directory", directory.path]
        let output = Pipe()
        server.standardOutput = output
        server.standardError = FileHandle.nullDevice
        try server.run()
        var line = ""
        while !line.hasSuffix("\n"), line.count < 300 {
            let byte = output.fileHandleForReading.readData(ofLength: 1)
            guard !byte.isEmpty else { break }
            line += String(decoding: byte, as: UTF8.self)
        }
        guard let range = line.range(of: #"port (\d+)"#, options: .regularExpression),
            let port = Int(line[range].dropFirst(5))
        else {
            server.terminate()
            throw POSIXError(.EADDRNOTAVAIL)
        }
        self.port = port
    }

    /// Kills the server (its waiting thread reaps it).
    func stop() {
        server.signal(SIGKILL)
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], in directory: URL? = nil) throws -> String {
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw POSIXError(.EIO)
        }
        return String(decoding: data, as: UTF8.self)
    }
}
