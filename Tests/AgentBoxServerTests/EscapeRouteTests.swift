import AgentBox
import AgentBoxAPI
import AgentBoxSandbox
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

// The escape suite's path attacks (#17): `..`, host paths and symlinks that the workspace planted (to /etc/shadow,
// to the data directory, to a neighbour, in the final or in a parent component, relative and absolute), through every
// route that takes a path: read, write, stat, exists, list, mkdir, move (both ends), delete, upload (and the entries
// of the tar it unpacks), archive, watch, the working directory of processes, execs and shells, and snapshots and
// forks; and symlinks swapped back and forth by the workspace while a route is called again and again.
//
// Each case gets a directory of its own in the workspace, planted from inside the sandbox (`kit` below). Whatever the
// route answers, no answer may hold a planted secret, and afterwards the host's files are as they were.

/// The server, its workspaces and what they must never reach, set up once around the suite.
final class RouteScene: Sendable {
    @TaskLocal static var current: RouteScene?

    let client: any TestClientProtocol
    let manager: WorkspaceManager
    let dataDirectory: String
    /// `<data>/host-dir`: root's (0755), holding `secret` (0644), which only path resolution keeps from the routes.
    let hostDirectory: String
    let hostSecret: String
    let neighbourSecret: String
    /// The neighbour's host directory (`workspace/secret.txt` holds its secret).
    let neighbourDirectory: String
    /// `/etc/shadow`'s modification time and size, which no case may change.
    let shadowStamp: String
    /// The first line of the host's /etc/passwd, when it differs from the sandbox's own.
    let hostPasswdLine: String?

    init(
        client: any TestClientProtocol, manager: WorkspaceManager, dataDirectory: String, hostSecret: String, neighbourSecret: String,
        neighbourDirectory: String
    ) {
        self.client = client
        self.manager = manager
        self.dataDirectory = dataDirectory
        self.hostDirectory = dataDirectory + "/host-dir"
        self.hostSecret = hostSecret
        self.neighbourSecret = neighbourSecret
        self.neighbourDirectory = neighbourDirectory
        self.shadowStamp = Self.stamp("/etc/shadow")
        let passwd = (try? String(contentsOfFile: "/etc/passwd", encoding: .utf8))?.split(separator: "\n").first.map(String.init)
        self.hostPasswdLine = passwd?.hasSuffix("nologin") == true ? nil : passwd
    }

    static func stamp(_ path: String) -> String {
        var info = stat()
        guard lstat(path, &info) == 0 else { return "absent" }
        return "\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) \(info.st_size) \(info.st_nlink)"
    }

    /// What the host holds at `name` in the case directory `d` of the attacker's files.
    func entry(_ d: String, _ name: String) async throws -> String {
        hostEntry(try await workspaceDirectory("attacker") + d + name)
    }

    /// The host directory of a workspace's files.
    func workspaceDirectory(_ name: String) async throws -> String {
        try await manager.runtime(for: WorkspaceKey(rawValue: name)!).directory.path
    }

    func send(_ workspace: String, _ request: RouteRequest) async throws -> TestResponse {
        try await client.execute(
            uri: "/v1/workspaces/\(workspace)/\(request.uri)", method: request.method,
            headers: request.json ? [.contentType: "application/json"] : [:], body: request.body.map { ByteBuffer(bytes: $0) })
    }

    static func make(client: any TestClientProtocol, manager: WorkspaceManager, cases: [RouteAttack]) async throws -> RouteScene {
        let slugs = cases.map { "\($0.workspace)/\($0.slug)" }
        precondition(Set(slugs).count == slugs.count, "two cases share a directory")
        func secret(_ kind: String) -> String { "\(kind)-SECRET-\(UUID().uuidString.replacingOccurrences(of: "-", with: ""))" }
        let data = manager.configuration.dataDirectory.path
        let hostSecret = secret("HOST"), neighbourSecret = secret("NEIGHBOUR")
        try FileManager.default.createDirectory(atPath: data + "/host-dir", withIntermediateDirectories: true)
        try hostSecret.write(toFile: data + "/host-dir/secret", atomically: false, encoding: .utf8)
        chmod(data + "/host-dir", 0o755)
        chmod(data + "/host-dir/secret", 0o644)

        _ = try await client.execute(uri: "/v1/workspaces/neighbour", method: .put)
        let written = try await client.execute(
            uri: "/v1/workspaces/neighbour/fs/file?path=/workspace/secret.txt", method: .put, body: ByteBuffer(string: neighbourSecret))
        #expect(written.status == .ok)
        let neighbour = try await manager.runtime(for: WorkspaceKey(rawValue: "neighbour")!).directory.path
        let scene = RouteScene(
            client: client, manager: manager, dataDirectory: data, hostSecret: hostSecret, neighbourSecret: neighbourSecret,
            neighbourDirectory: neighbour)

        // Each case's directory, planted from inside the sandbox as the workspace's own processes would.
        let kit = """
            kit() {
              d=/workspace/$1
              mkdir -p $d/safe $d/tree/sub $d/flip && printf safe > $d/safe/secret && printf safe > $d/flip/secret && printf m > $d/flip/marker
              ln -s /etc/shadow $d/l-shadow; ln -s /etc $d/l-etc; ln -s /root $d/l-root
              ln -s \(data)/host-dir/secret $d/l-secret; ln -s \(data)/host-dir $d/l-data; ln -s ../../../../host-dir $d/l-up
              ln -s \(neighbour)/workspace $d/l-nb
              ln -s \(data)/host-dir $d/tree/l-data; ln -s \(neighbour)/workspace $d/tree/sub/l-nb; ln -s \(data)/host-dir $d/flip-alt
            }
            """
        for workspace in Set(cases.map(\.workspace)) {
            _ = try await client.execute(uri: "/v1/workspaces/\(workspace)", method: .put)
            let calls = cases.filter { $0.workspace == workspace }.map { "kit \($0.slug)" }.joined(separator: "\n")
            let planted = try await manager.runtime(for: WorkspaceKey(rawValue: workspace)!).exec(
                ExecRequest(command: kit + "\n" + calls + "\necho planted", timeoutMs: 60_000))
            #expect(planted.stdout == "planted\n" && planted.stderr.isEmpty, "\(planted)")
        }
        return scene
    }

    /// Checks that the host's files are as the scene left them.
    func expectHostIntact(sourceLocation: SourceLocation = #_sourceLocation) {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: hostDirectory)) ?? []
        #expect(entries == ["secret"], "the host directory holds only its secret: \(entries)", sourceLocation: sourceLocation)
        #expect((try? String(contentsOfFile: hostDirectory + "/secret", encoding: .utf8)) == hostSecret, sourceLocation: sourceLocation)
        #expect(Self.stamp(hostDirectory + "/secret").hasSuffix(" 1"), "no new hard link to it", sourceLocation: sourceLocation)
        let neighbourEntries = (try? FileManager.default.contentsOfDirectory(atPath: neighbourDirectory + "/workspace")) ?? []
        #expect(neighbourEntries == ["secret.txt"], "the neighbour's files: \(neighbourEntries)", sourceLocation: sourceLocation)
        for path in ["/etc/pwned", "/root/pwned", "/pwned", dataDirectory + "/pwned", dataDirectory + "/workspaces/pwned", "/etc/newdir"] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) was created", sourceLocation: sourceLocation)
        }
        #expect(Self.stamp("/etc/shadow") == shadowStamp, "/etc/shadow is untouched", sourceLocation: sourceLocation)
    }

    /// The texts that must never be in an answer.
    var forbidden: [(String, String)] {
        [("the host's secret", hostSecret), ("the neighbour's secret", neighbourSecret)] + (hostPasswdLine.map { [("the host's /etc/passwd", $0)] } ?? [])
    }
}

struct RouteSceneTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard canSandbox else { return try await function() }
        try await withServer(sandbox: true) { client, manager in
            let scene = try await RouteScene.make(client: client, manager: manager, cases: routeAttacks)
            try await RouteScene.$current.withValue(scene) { try await function() }
        }
    }
}

/// A query value, percent-encoded.
func q(_ value: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~/")
    return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
}

/// One request to a route of the attacked workspace (`uri` follows `/v1/workspaces/{key}/`).
struct RouteRequest: Sendable {
    var method: HTTPRequest.Method
    var uri: String
    var body: [UInt8]? = nil
    var json = false

    static func read(_ path: String) -> Self { .init(method: .get, uri: "fs/file?path=\(q(path))") }
    static func write(_ path: String) -> Self { .init(method: .put, uri: "fs/file?path=\(q(path))", body: Array("pwned".utf8)) }
    static func stat(_ path: String) -> Self { .init(method: .get, uri: "fs/stat?path=\(q(path))") }
    static func exists(_ path: String) -> Self { .init(method: .get, uri: "fs/exists?path=\(q(path))") }
    static func list(_ path: String, recursive: Bool = false) -> Self { .init(method: .get, uri: "fs/entries?path=\(q(path))&recursive=\(recursive)") }
    static func mkdir(_ path: String, recursive: Bool = false) -> Self { .json(.post, "fs/mkdir", ["path": path, "recursive": recursive]) }
    static func move(_ from: String, _ to: String, overwrite: Bool = false) -> Self { .json(.post, "fs/move", ["from": from, "to": to, "overwrite": overwrite]) }
    static func delete(_ path: String, recursive: Bool = false) -> Self { .init(method: .delete, uri: "fs/entry?path=\(q(path))&recursive=\(recursive)") }
    static func upload(_ path: String, _ tar: [UInt8] = TarBuilder().archive) -> Self { .init(method: .post, uri: "fs/upload?path=\(q(path))", body: tar) }
    static func archive(_ path: String) -> Self { .init(method: .get, uri: "fs/archive?path=\(q(path))") }
    static func watch(_ path: String) -> Self { .init(method: .get, uri: "fs/watch?path=\(q(path))&recursive=true") }
    static func spawn(cwd: String) -> Self { .json(.post, "processes", ["command": "cat", "args": ["secret"], "cwd": cwd]) }
    static func exec(_ command: String, cwd: String) -> Self { .json(.post, "exec", ["command": command, "cwd": cwd]) }
    static func shell(cwd: String) -> Self { .json(.post, "shells", ["command": "/bin/sh", "cwd": cwd]) }

    static func json(_ method: HTTPRequest.Method, _ uri: String, _ object: [String: Any]) -> Self {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return .init(method: method, uri: uri, body: Array(data), json: true)
    }
}

/// One path attack through one route, and what it must answer.
struct RouteAttack: Sendable, CustomTestStringConvertible {
    enum Action: Sendable {
        /// One request; `d` is the case's own directory (`/workspace/<slug>`).
        case request(@Sendable (_ scene: RouteScene, _ d: String) -> RouteRequest)
        /// Anything else; returns every answer's body, which is searched for the secrets.
        case custom(@Sendable (_ scene: RouteScene, _ d: String, _ workspace: String) async throws -> String)
    }

    var route: String
    var attack: String
    var workspace = "attacker"
    var action: Action
    /// The statuses that may answer (for `request`).
    var status: Set<Int> = []
    /// A fragment of the problem's detail.
    var detail: String?
    var verify: (@Sendable (_ scene: RouteScene, _ d: String, _ response: TestResponse) async throws -> Void)?

    var testDescription: String { "\(route): \(attack)" }

    /// The case's directory name: its route and attack, in letters and digits.
    var slug: String {
        let raw = "\(route)-\(attack)".lowercased().map { $0.isLetter && $0.isASCII || $0.isNumber ? $0 : "-" }
        return String(String(raw).split(separator: "-").joined(separator: "-").prefix(120))
    }

    init(
        _ route: String, _ attack: String, workspace: String = "attacker", status: Set<Int>, detail: String? = nil,
        _ request: @escaping @Sendable (_ scene: RouteScene, _ d: String) -> RouteRequest,
        verify: (@Sendable (_ scene: RouteScene, _ d: String, _ response: TestResponse) async throws -> Void)? = nil
    ) {
        self.route = route
        self.attack = attack
        self.workspace = workspace
        self.action = .request(request)
        self.status = status
        self.detail = detail
        self.verify = verify
    }

    init(
        _ route: String, _ attack: String, workspace: String = "attacker",
        custom: @escaping @Sendable (_ scene: RouteScene, _ d: String, _ workspace: String) async throws -> String
    ) {
        self.route = route
        self.attack = attack
        self.workspace = workspace
        self.action = .custom(custom)
    }
}

/// The problem detail for `..` above `/`, for a path outside the served roots, and for a resolution that left them.
let climbs = "climbs above the root", notServed = "not in the workspace's files", leadsOutside = "leads outside the workspace"

/// What the host holds at `path` (of a workspace's files): `symlink`, `file <content>`, `directory`, `other`, `absent`.
func hostEntry(_ path: String) -> String {
    var info = stat()
    guard lstat(path, &info) == 0 else { return "absent" }
    switch info.st_mode & S_IFMT {
    case S_IFLNK: return "symlink"
    case S_IFREG: return "file " + ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "?")
    case S_IFDIR: return "directory"
    default: return "other"
    }
}

// MARK: - Cases

let routeAttacks: [RouteAttack] = pathAttacks + cwdAttacks + tarAttacks + swapAttacks + forkAttacks

let pathAttacks: [RouteAttack] = [
    // read
    RouteAttack("read", "../ chain out of /workspace", status: [403], detail: climbs) { _, d in .read(d + "/../../../etc/passwd") },
    RouteAttack("read", "relative ../../etc/passwd", status: [403], detail: climbs) { _, _ in .read("../../etc/passwd") },
    RouteAttack("read", "percent-encoded ..%2f..%2fetc%2fpasswd", status: [403], detail: climbs) { _, _ in
        RouteRequest(method: .get, uri: "fs/file?path=%2e%2e%2f%2e%2e%2fetc%2fpasswd")
    },
    RouteAttack("read", "host path /etc/shadow", status: [400], detail: notServed) { _, _ in .read("/etc/shadow") },
    RouteAttack("read", "/home/agent/../../etc/shadow", status: [400], detail: notServed) { _, _ in .read("/home/agent/../../etc/shadow") },
    RouteAttack("read", "the data directory's file by its host path", status: [400], detail: notServed) { scene, _ in .read(scene.hostDirectory + "/secret") },
    RouteAttack("read", "planted symlink to the host's file (final component)", status: [403], detail: leadsOutside) { _, d in .read(d + "/l-secret") },
    RouteAttack("read", "planted symlink to /etc/shadow", status: [403], detail: leadsOutside) { _, d in .read(d + "/l-shadow") },
    RouteAttack("read", "planted symlink to /etc in a parent component", status: [403], detail: leadsOutside) { _, d in .read(d + "/l-etc/passwd") },
    RouteAttack("read", "planted relative symlink climbing into the data directory", status: [403], detail: leadsOutside) { _, d in .read(d + "/l-up/secret") },
    RouteAttack("read", "planted symlink to the neighbour's files", status: [403], detail: leadsOutside) { _, d in .read(d + "/l-nb/secret.txt") },
    RouteAttack("read", "planted symlink to /root", status: [403], detail: leadsOutside) { _, d in .read(d + "/l-root/.bashrc") },
    // write
    RouteAttack("write", "../ chain to /etc/pwned", status: [403], detail: climbs) { _, d in .write(d + "/../../../etc/pwned") },
    RouteAttack("write", "host path /etc/pwned", status: [400], detail: notServed) { _, _ in .write("/etc/pwned") },
    RouteAttack("write", "into the data directory by its host path", status: [400], detail: notServed) { scene, _ in .write(scene.hostDirectory + "/pwned") },
    RouteAttack("write", "through a planted symlink in a parent (to the data directory)", status: [403], detail: leadsOutside) { _, d in .write(d + "/l-data/pwned") },
    RouteAttack("write", "through a planted relative symlink that climbs out", status: [403], detail: leadsOutside) { _, d in .write(d + "/l-up/pwned") },
    RouteAttack("write", "into the neighbour through a planted symlink", status: [403], detail: leadsOutside) { _, d in .write(d + "/l-nb/pwned") },
    RouteAttack("write", "missing parents created through a planted symlink", status: [403], detail: leadsOutside) { _, d in .write(d + "/l-data/new/deeper/pwned") },
    RouteAttack(
        "write", "over a planted symlink to the host's file", status: [200], { _, d in .write(d + "/l-secret") },
        verify: { scene, d, _ in
            // The link is replaced by the file; what it pointed to is untouched (expectHostIntact).
            let entry = try await scene.entry(d, "/l-secret")
            #expect(entry == "file pwned")
        }),
    // stat and exists
    RouteAttack("stat", "../ chain", status: [403], detail: climbs) { _, d in .stat(d + "/../../../etc/shadow") },
    RouteAttack("stat", "host path /etc/shadow", status: [400], detail: notServed) { _, _ in .stat("/etc/shadow") },
    RouteAttack("stat", "through a planted symlink in a parent", status: [403], detail: leadsOutside) { _, d in .stat(d + "/l-data/secret") },
    RouteAttack(
        "stat", "a planted symlink itself: the link, never its target", status: [200], { _, d in .stat(d + "/l-secret") },
        verify: { scene, _, response in
            let stat = try decode(FileStat.self, response)
            #expect(stat.type == .symlink && stat.target == scene.hostDirectory + "/secret" && stat.size == Int64((scene.hostDirectory + "/secret").utf8.count), "\(stat)")
        }),
    RouteAttack(
        "exists", "a host file through a planted symlink: no oracle", status: [403], detail: leadsOutside, { _, d in .exists(d + "/l-data/secret") },
        verify: { scene, d, response in
            let absent = try await scene.send("attacker", .exists(d + "/l-data/no-such-file"))
            let answer = String(buffer: absent.body).replacingOccurrences(of: "no-such-file", with: "secret")
            #expect(absent.status == response.status && answer == String(buffer: response.body), "present and absent answer alike")
        }),
    RouteAttack("exists", "../ chain", status: [403], detail: climbs) { _, d in .exists(d + "/../../../etc/shadow") },
    // list
    RouteAttack("list", "a planted symlink to a host directory", status: [403], detail: leadsOutside) { _, d in .list(d + "/l-data") },
    RouteAttack("list", "a planted symlink to /etc", status: [403], detail: leadsOutside) { _, d in .list(d + "/l-etc") },
    RouteAttack("list", "../ chain", status: [403], detail: climbs) { _, d in .list(d + "/../../..") },
    RouteAttack("list", "host path /etc", status: [400], detail: notServed) { _, _ in .list("/etc") },
    RouteAttack(
        "list", "recursively, a tree full of planted symlinks: listed, never followed", status: [200], { _, d in .list(d, recursive: true) },
        verify: { _, d, response in
            let items = try decode(FileEntryList.self, response).items
            let links = items.filter { $0.type == .symlink }.map(\.name)
            #expect(Set(links) == ["l-shadow", "l-etc", "l-root", "l-secret", "l-data", "l-up", "l-nb", "flip-alt"], "\(links)")
            #expect(!items.contains { $0.path.contains("/l-") && !$0.name.hasPrefix("l-") }, "nothing below a link: \(items.map(\.path))")
            #expect(items.filter { $0.name == "secret" }.map(\.path).sorted() == [d + "/flip/secret", d + "/safe/secret"])
        }),
    // mkdir
    RouteAttack("mkdir", "through a planted symlink to the data directory", status: [403], detail: leadsOutside) { _, d in .mkdir(d + "/l-data/newdir") },
    RouteAttack("mkdir", "recursively through a planted relative symlink", status: [403], detail: leadsOutside) { _, d in .mkdir(d + "/l-up/a/b", recursive: true) },
    RouteAttack("mkdir", "host path /etc/newdir", status: [400], detail: notServed) { _, _ in .mkdir("/etc/newdir", recursive: true) },
    RouteAttack("mkdir", "../ chain", status: [403], detail: climbs) { _, d in .mkdir(d + "/../../../etc/newdir") },
    // move, from either end
    RouteAttack("move from", "a host file through a planted symlink", status: [403], detail: leadsOutside) { _, d in .move(d + "/l-data/secret", d + "/stolen") },
    RouteAttack("move from", "the neighbour's file through a planted symlink", status: [403], detail: leadsOutside) { _, d in .move(d + "/l-nb/secret.txt", d + "/stolen") },
    RouteAttack("move from", "host path /etc/shadow", status: [400], detail: notServed) { _, d in .move("/etc/shadow", d + "/stolen") },
    RouteAttack("move from", "../ chain", status: [403], detail: climbs) { _, d in .move(d + "/../../../etc/shadow", d + "/stolen") },
    RouteAttack(
        "move from", "a planted symlink: the link moves, not its target", status: [204], { _, d in .move(d + "/l-secret", d + "/moved") },
        verify: { scene, d, _ in
            let entry = try await scene.entry(d, "/moved")
            #expect(entry == "symlink")
        }),
    RouteAttack("move to", "into the data directory through a planted symlink", status: [403], detail: leadsOutside) { _, d in .move(d + "/safe/secret", d + "/l-data/pwned") },
    RouteAttack("move to", "into the neighbour through a planted symlink", status: [403], detail: leadsOutside) { _, d in .move(d + "/safe/secret", d + "/l-nb/pwned") },
    RouteAttack("move to", "host path /etc/pwned", status: [400], detail: notServed) { _, d in .move(d + "/safe/secret", "/etc/pwned") },
    RouteAttack("move to", "../ chain", status: [403], detail: climbs) { _, d in .move(d + "/safe/secret", d + "/../../../etc/pwned") },
    RouteAttack(
        "move to", "over a planted symlink: the link is replaced", status: [204], { _, d in .move(d + "/safe/secret", d + "/l-secret", overwrite: true) },
        verify: { scene, d, _ in
            let entry = try await scene.entry(d, "/l-secret")
            #expect(entry == "file safe")
        }),
    // delete
    RouteAttack("delete", "a host file through a planted symlink", status: [403], detail: leadsOutside) { _, d in .delete(d + "/l-data/secret") },
    RouteAttack("delete", "the neighbour's file through a planted symlink", status: [403], detail: leadsOutside) { _, d in .delete(d + "/l-nb/secret.txt") },
    RouteAttack("delete", "host path /etc/shadow", status: [400], detail: notServed) { _, _ in .delete("/etc/shadow") },
    RouteAttack("delete", "../ chain", status: [403], detail: climbs) { _, d in .delete(d + "/../../../etc/shadow") },
    RouteAttack(
        "delete", "a planted symlink: the link goes, its target stays", status: [204], { _, d in .delete(d + "/l-secret") },
        verify: { scene, d, _ in
            let entry = try await scene.entry(d, "/l-secret")
            #expect(entry == "absent")
        }),
    RouteAttack(
        "delete", "recursively, a tree holding symlinks to the host and the neighbour", status: [204], { _, d in .delete(d + "/tree", recursive: true) },
        verify: { scene, d, _ in
            let entry = try await scene.entry(d, "/tree")
            #expect(entry == "absent")
        }),
    // upload, archive and watch
    RouteAttack("upload", "into a planted symlink to the data directory", status: [403], detail: leadsOutside) { _, d in .upload(d + "/l-data") },
    RouteAttack("upload", "into a planted relative symlink that climbs out", status: [403], detail: leadsOutside) { _, d in .upload(d + "/l-up/x") },
    RouteAttack("upload", "../ chain", status: [403], detail: climbs) { _, d in .upload(d + "/../../../etc") },
    RouteAttack("upload", "host path /etc", status: [400], detail: notServed) { _, _ in .upload("/etc") },
    RouteAttack("archive", "a planted symlink to the data directory", status: [400], detail: "not a directory") { _, d in .archive(d + "/l-data") },
    RouteAttack("archive", "../ chain", status: [403], detail: climbs) { _, d in .archive(d + "/../../..") },
    RouteAttack("archive", "host path /etc", status: [400], detail: notServed) { _, _ in .archive("/etc") },
    RouteAttack(
        "archive", "a directory full of planted symlinks: stored as links", status: [200], { _, d in .archive(d) },
        verify: { _, _, response in
            // The secrets are searched for in every answer; here the links must be in it, as links (type '2').
            let bytes = Array(response.body.readableBytesView)
            let names = stride(from: 0, to: bytes.count - 512, by: 512).compactMap { offset -> String? in
                guard bytes[offset + 156] == UInt8(ascii: "2") else { return nil }
                return String(decoding: bytes[offset..<offset + 100].prefix { $0 != 0 }, as: UTF8.self)
            }
            #expect(names.contains("./l-secret") && names.contains("./l-data"), "\(names)")
        }),
    RouteAttack("watch", "a planted symlink to the data directory", status: [403], detail: leadsOutside) { _, d in .watch(d + "/l-data") },
    RouteAttack("watch", "a planted relative symlink that climbs out", status: [403], detail: leadsOutside) { _, d in .watch(d + "/l-up") },
    RouteAttack("watch", "../ chain", status: [403], detail: climbs) { _, d in .watch(d + "/../../..") },
    RouteAttack("watch", "host path /etc", status: [400], detail: notServed) { _, _ in .watch("/etc") },
]

// MARK: Working directories

let cwdAttacks: [RouteAttack] = [
    RouteAttack("process cwd", "the data directory's host path", status: [400], detail: "cwd") { scene, _ in .spawn(cwd: scene.hostDirectory) },
    RouteAttack("process cwd", "a planted symlink to the data directory", status: [400], detail: "cwd") { _, d in .spawn(cwd: d + "/l-data") },
    RouteAttack("process cwd", "the supervisor's root (/proc/1/root)", status: [400], detail: "cwd") { _, _ in .spawn(cwd: "/proc/1/root") },
    RouteAttack(
        "exec cwd", "../ chain: lands on the sandbox's own /", status: [200], { _, _ in .exec("pwd; cat etc/shadow; readlink root", cwd: "/workspace/../../../..") },
        verify: { _, _, response in
            let result = try decode(ExecResult.self, response)
            // The sandbox's own /: no shadow file, and /root is the workspace's own home.
            #expect(result.stdout == "/\nhome/agent\n", "\(result)")
            #expect(result.stderr.contains("etc/shadow: No such file or directory"), "\(result)")
        }),
    RouteAttack("exec cwd", "a planted symlink to a neighbour's host path", status: [400], detail: "cwd") { _, d in .exec("cat secret.txt", cwd: d + "/l-nb") },
    RouteAttack("shell cwd", "the data directory's host path", status: [400], detail: "cwd") { scene, _ in .shell(cwd: scene.hostDirectory) },
    RouteAttack("shell cwd", "a planted symlink to the data directory", status: [400], detail: "cwd") { _, d in .shell(cwd: d + "/l-data") },
]

// MARK: Tar entries

/// A ustar archive, written member by member.
struct TarBuilder: Sendable {
    private var blocks: [UInt8] = []

    enum Kind: UInt8 {
        case file = 0x30, hardLink = 0x31, symlink = 0x32, character = 0x33, block = 0x34, directory = 0x35
    }

    func adding(
        _ name: String, _ kind: Kind = .file, content: String = "", link: String = "", mode: Int = 0o644, owner: Int = 1000,
        ownerName: String = "agent", device: (Int, Int) = (0, 0)
    ) -> TarBuilder {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, _ length: Int) {
            for (index, byte) in text.utf8.prefix(length).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, at offset: Int, _ length: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: max(0, length - 1 - digits.count)) + digits, at: offset, length - 1)
        }
        let bytes = Array(content.utf8)
        put(name, at: 0, 100)
        octal(mode, at: 100, 8)
        octal(owner, at: 108, 8)
        octal(owner, at: 116, 8)
        octal(bytes.count, at: 124, 12)
        octal(1_700_000_000, at: 136, 12)
        header[156] = kind.rawValue
        put(link, at: 157, 100)
        put("ustar", at: 257, 6)
        put("00", at: 263, 2)
        put(ownerName, at: 265, 32)
        put(ownerName, at: 297, 32)
        octal(device.0, at: 329, 8)
        octal(device.1, at: 337, 8)
        for index in 148..<156 { header[index] = 0x20 }
        octal(header.reduce(0) { $0 + Int($1) }, at: 148, 7)
        var copy = self
        copy.blocks += header + bytes + [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512)
        return copy
    }

    var archive: [UInt8] { blocks + [UInt8](repeating: 0, count: 1024) }
}

/// An upload of `tar` into the case's directory `up`, which may be refused (tar's failure is a 400) or unpacked; then
/// `check` looks at the host's copy of that directory.
func tarAttack(
    _ attack: String, _ tar: @escaping @Sendable (RouteScene) -> TarBuilder,
    check: @escaping @Sendable (_ scene: RouteScene, _ uploaded: String, _ workspace: String) async throws -> Void
) -> RouteAttack {
    RouteAttack(
        "upload tar", attack,
        custom: { scene, d, workspace in
            let response = try await scene.send(workspace, .upload(d + "/up", tar(scene).archive))
            #expect(response.status == .ok || response.status == .badRequest, "\(response.status) \(String(buffer: response.body))")
            let host = try await scene.workspaceDirectory(workspace)
            try await check(scene, host + d + "/up", host)
            // What was unpacked, read back through the fs routes, holds no secret either.
            var bodies = String(buffer: response.body)
            for name in ["h-passwd", "h-secret", "h-shadow", "link/pwned", "etc/pwned", "pwned"] {
                bodies += String(buffer: try await scene.send(workspace, .read(d + "/up/" + name)).body)
            }
            return bodies
        })
}

let tarAttacks: [RouteAttack] = [
    tarAttack("member names with ../") { scene in
        TarBuilder().adding("../../../../../../etc/pwned", content: "pwned").adding("../../../../host-dir/pwned", content: "pwned")
            .adding("../pwned", content: "pwned").adding("ok", content: "fine")
    } check: { _, uploaded, workspace in
        #expect(hostEntry(workspace + "/workspace/pwned") == "absent")
        #expect(!FileManager.default.fileExists(atPath: (uploaded as NSString).deletingLastPathComponent + "/pwned"), "nothing beside the upload directory")
    },
    tarAttack("absolute member names") { scene in
        TarBuilder().adding("/etc/pwned", content: "pwned").adding(scene.hostDirectory + "/pwned", content: "pwned").adding("/workspace/pwned", content: "pwned")
    } check: { _, uploaded, workspace in
        #expect(hostEntry(workspace + "/workspace/pwned") == "absent")
        // Unpacked below the upload directory, the leading / taken off.
        #expect(hostEntry(uploaded + "/etc/pwned") == "file pwned")
    },
    tarAttack("a symlink member, then a file written through it") { scene in
        TarBuilder().adding("link", .symlink, link: scene.hostDirectory).adding("link/pwned", content: "pwned")
            .adding("etc", .symlink, link: "/etc").adding("etc/pwned", content: "pwned")
            .adding("up", .symlink, link: "../../../../..").adding("up/pwned", content: "pwned")
    } check: { _, _, workspace in
        #expect(hostEntry(workspace + "/pwned") == "absent" && hostEntry(workspace + "/workspace/pwned") == "absent")
    },
    tarAttack("hard links to host files (/etc/passwd, /etc/shadow, the data directory's file)") { scene in
        TarBuilder().adding("h-passwd", .hardLink, link: "/etc/passwd").adding("h-shadow", .hardLink, link: "/etc/shadow")
            .adding("h-secret", .hardLink, link: scene.hostDirectory + "/secret")
    } check: { _, uploaded, _ in
        for name in ["h-passwd", "h-shadow", "h-secret"] {
            #expect(hostEntry(uploaded + "/" + name) == "absent", "\(name) was created")
        }
        #expect(RouteScene.stamp("/etc/passwd").hasSuffix(" 1"), "/etc/passwd gained no link")
    },
    tarAttack("device nodes (/dev/mem, a disk)") { _ in
        TarBuilder().adding("mem", .character, mode: 0o666, device: (1, 1)).adding("sda", .block, mode: 0o666, device: (8, 0))
    } check: { _, uploaded, _ in
        #expect(hostEntry(uploaded + "/mem") == "absent" && hostEntry(uploaded + "/sda") == "absent")
    },
    tarAttack("a setuid-root file") { _ in
        TarBuilder().adding("suid", content: "#!/bin/sh\nid\n", mode: 0o4755, owner: 0, ownerName: "root")
    } check: { scene, uploaded, _ in
        var info = stat()
        #expect(stat(uploaded + "/suid", &info) == 0)
        // The range of host ids the workspace's files carry on disk (the storage range, or its own).
        let root = try await scene.manager.runtime(for: WorkspaceKey(rawValue: "attacker")!).diskIDs.start
        #expect(info.st_uid >= root && info.st_uid < root + 2048 && info.st_uid != 0, "owned by an id of the range of the workspace's files on the host, not root: \(info.st_uid)")
    },
]

// MARK: Symlinks swapped during requests

/// Run inside the workspace: exchanges `<d>/flip` (a directory holding `secret` ("safe") and `marker`) with
/// `<d>/flip-alt` (a symlink) as fast as it can (renameat2 RENAME_EXCHANGE), now and then pointing the symlink at the
/// next of its targets and putting back what a request removed from the directory.
let flipper = """
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    base, targets = sys.argv[1], sys.argv[2:]
    flip, alt = (base + "/flip").encode(), (base + "/flip-alt").encode()
    safe = os.open(base + "/flip", os.O_RDONLY | os.O_DIRECTORY)
    round = 0
    while True:
        round += 1
        libc.renameat2(-100, flip, -100, alt, 2)
        if round % 64 == 0:
            for name, data in (("secret", b"safe"), ("marker", b"m")):
                try:
                    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=safe)
                    os.write(fd, data)
                    os.close(fd)
                except FileExistsError:
                    pass
            link = alt if os.path.islink(alt) else flip
            try:
                os.unlink(base + "/flip-new")
            except FileNotFoundError:
                pass
            os.symlink(targets[(round // 64) % len(targets)], base + "/flip-new")
            os.rename(base + "/flip-new", link)
    """

/// Calls `request` `times` times while the workspace flips `<d>/flip` between its directory and symlinks to the data
/// directory (absolute and relative) and to the neighbour; every answer's status must be in `allowed`; `accepted`
/// says whether a successful answer is the directory's (never the host's); at least one must succeed.
func swapAttack(
    _ route: String, times: Int = 300, allowed: Set<Int>, _ request: @escaping @Sendable (_ d: String, _ round: Int) -> RouteRequest,
    accepted: @escaping @Sendable (_ scene: RouteScene, _ response: TestResponse) throws -> Bool = { _, _ in true }
) -> RouteAttack {
    RouteAttack(
        route, "a symlink swapped in and out by the workspace during \(times) requests",
        custom: { scene, d, workspace in
            let runtime = try await scene.manager.runtime(for: WorkspaceKey(rawValue: workspace)!)
            let targets = [scene.hostDirectory, "../../../../host-dir", scene.neighbourDirectory + "/workspace"]
            let flipping = try await runtime.spawn(SpawnRequest(command: "python3", args: ["-c", flipper, d] + targets))
            var bodies = "", successes = 0, statuses: [Int: Int] = [:]
            for round in 0..<times {
                let response = try await scene.send(workspace, request(d, round))
                let code = Int(response.status.code)
                statuses[code, default: 0] += 1
                bodies += String(buffer: response.body)
                if (200..<300).contains(code) {
                    #expect(try accepted(scene, response), "an answer from outside the workspace: \(String(buffer: response.body))")
                    successes += 1
                }
            }
            let state = try await runtime.process(flipping.id)
            #expect(state.status == .running, "the workspace kept swapping throughout: \(state)")
            try await runtime.signal(flipping.id, .KILL)
            #expect(Set(statuses.keys).isSubset(of: allowed), "\(statuses)")
            #expect(successes > 0, "the workspace's own directory was reached sometimes: \(statuses)")
            return bodies
        })
}

let swapAttacks: [RouteAttack] = [
    swapAttack("read", allowed: [200, 403, 404]) { d, _ in .read(d + "/flip/secret") } accepted: { _, response in String(buffer: response.body) == "safe" },
    swapAttack("write", times: 150, allowed: [200, 403, 404]) { d, _ in .write(d + "/flip/pwned") },
    swapAttack("stat", allowed: [200, 403, 404]) { d, _ in .stat(d + "/flip/secret") } accepted: { _, response in
        try decode(FileStat.self, response).size == 4
    },
    swapAttack("list", allowed: [200, 403, 404]) { d, _ in .list(d + "/flip") } accepted: { _, response in
        try decode(FileEntryList.self, response).items.contains { $0.name == "marker" }
    },
    swapAttack("mkdir", times: 150, allowed: [204, 403, 404, 409]) { d, round in .mkdir(d + "/flip/dir\(round)") },
    swapAttack("move", times: 150, allowed: [204, 403, 404]) { d, round in
        round % 2 == 0 ? .move(d + "/flip/secret", d + "/flip/secret2", overwrite: true) : .move(d + "/flip/secret2", d + "/flip/secret", overwrite: true)
    },
    swapAttack("delete", times: 150, allowed: [204, 403, 404]) { d, _ in .delete(d + "/flip/secret") },
]

// MARK: Snapshots and forks

let forkAttacks: [RouteAttack] = [
    RouteAttack(
        "snapshot and fork", "a fork of a workspace that planted symlinks to the host", workspace: "forker",
        custom: { scene, d, workspace in
            let snapshot = try decode(Snapshot.self, try await scene.send(workspace, RouteRequest(method: .post, uri: "snapshots")))
            let copy = scene.dataDirectory + "/snapshots/\(snapshot.id)/workspace" + d.dropFirst("/workspace".count)
            for name in ["l-secret", "l-data", "l-up", "l-nb", "l-shadow"] {
                #expect(hostEntry(copy + "/" + name) == "symlink", "\(name) is copied as a symlink")
            }
            let created = try await scene.client.execute(
                uri: "/v1/workspaces/fork", method: .put, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"fromSnapshot":"\#(snapshot.id)"}"#))
            #expect(created.status == .created)
            var bodies = ""
            for path in ["/l-secret", "/l-data/secret", "/l-up/secret", "/l-nb/secret.txt"] {
                let response = try await scene.send("fork", .read(d + path))
                #expect(response.status == .forbidden, "\(path): \(response.status)")
                bodies += String(buffer: response.body)
            }
            let inside = try await scene.send("fork", .exec("cat l-secret l-data/secret l-nb/secret.txt", cwd: d))
            bodies += String(buffer: inside.body)
            #expect(try decode(ExecResult.self, inside).stderr.components(separatedBy: "No such file or directory").count == 4)
            return bodies
        }),
    RouteAttack(
        "snapshot", "snapshots taken while the workspace swaps a directory for symlinks to the host", workspace: "snapper",
        custom: { scene, d, workspace in
            let runtime = try await scene.manager.runtime(for: WorkspaceKey(rawValue: workspace)!)
            let flipping = try await runtime.spawn(SpawnRequest(command: "python3", args: ["-c", flipper, d, scene.hostDirectory, "../../../../host-dir"]))
            var bodies = ""
            for _ in 0..<5 {
                let response = try await scene.send(workspace, RouteRequest(method: .post, uri: "snapshots"))
                #expect(response.status == .created, "\(String(buffer: response.body))")
                bodies += String(buffer: response.body)
                guard let snapshot = try? decode(Snapshot.self, response) else { continue }
                let copy = scene.dataDirectory + "/snapshots/\(snapshot.id)/workspace" + d.dropFirst("/workspace".count)
                for name in ["flip", "flip-alt"] {
                    // Each name is copied as what it was when the copy reached it: a symlink (not followed) or the
                    // workspace's own directory, never the host's directory.
                    let entry = hostEntry(copy + "/" + name)
                    #expect(entry == "symlink" || entry == "directory" || entry == "absent", "\(name): \(entry)")
                    if entry == "directory" {
                        let names = (try? FileManager.default.contentsOfDirectory(atPath: copy + "/" + name)) ?? []
                        for file in names { bodies += (try? String(contentsOfFile: copy + "/\(name)/" + file, encoding: .utf8)) ?? "" }
                        #expect(!names.contains("secret") || hostEntry(copy + "/\(name)/secret") == "file safe", "\(names)")
                    }
                }
            }
            try await runtime.signal(flipping.id, .KILL)
            return bodies
        }),
]

// MARK: - The suite

@Suite("Escape suite: paths through the routes", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(3)), RouteSceneTrait())
struct EscapeRouteTests {
    @Test(arguments: routeAttacks)
    func attack(_ attack: RouteAttack) async throws {
        let scene = try #require(RouteScene.current, "the scene is set up around the suite")
        let d = "/workspace/" + attack.slug
        var seen: String
        switch attack.action {
        case .request(let request):
            let response = try await scene.send(attack.workspace, request(scene, d))
            seen = String(buffer: response.body)
            #expect(attack.status.contains(Int(response.status.code)), "\(response.status): \(seen)")
            if let detail = attack.detail {
                #expect(seen.contains(detail), "the problem says why: \(seen)")
            }
            try await attack.verify?(scene, d, response)
        case .custom(let body):
            seen = try await body(scene, d, attack.workspace)
        }
        for (what, secret) in scene.forbidden {
            #expect(!seen.contains(secret), "\(what) leaked: \(seen.prefix(2000))")
        }
        scene.expectHostIntact()
    }
}
