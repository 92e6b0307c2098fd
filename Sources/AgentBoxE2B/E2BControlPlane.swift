import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOFoundationEssentialsCompat

/// The body of a create (`POST /v2/sandboxes`, `POST /sandboxes`).
struct E2BNewSandbox: Decodable, Sendable {
    var templateID: String?
    var timeout: Int?
    var metadata: [String: String]?
    var envVars: [String: String]?
    var autoPause: Bool?
}

/// The body of a connect, a resume and a timeout.
struct E2BTimeoutBody: Decodable, Sendable {
    var timeout: Int?
}

/// A created or connected sandbox, as the SDK reads it.
struct E2BSandboxAnswer: Encodable, Sendable {
    var templateID: String
    var sandboxID: String
    var clientID: String
    var envdVersion: String
    var envdAccessToken: String?
    var trafficAccessToken: String?
    var alias: String?
}

/// A sandbox of a list, and (with the access token) of `GET /sandboxes/{id}`.
struct E2BListedSandbox: Encodable, Sendable {
    var templateID: String
    var sandboxID: String
    var clientID: String
    var alias: String?
    var startedAt: String
    var endAt: String
    var cpuCount: Int
    var memoryMB: Int
    var diskSizeMB: Int
    var state: String
    var envdVersion: String
    var metadata: [String: String]
    var envdAccessToken: String?
}

/// One sample of a sandbox's resource use.
struct E2BSandboxMetric: Encodable, Sendable {
    var timestamp: String
    var timestampUnix: Int64
    var cpuCount: Int
    var cpuUsedPct: Double
    var memUsed: Int64
    var memTotal: Int64
    var memCache: Int64
    var diskUsed: Int64
    var diskTotal: Int64
}

/// The templates AgentBox offers under E2B's names (and, by their names, its images).
enum E2BTemplate {
    static let base = "base"
    static let codeInterpreter = "code-interpreter-v1"
    static let known: Set<String> = [base, codeInterpreter, "code-interpreter", "code-interpreter-beta"]
}

extension E2BService {
    /// The longest timeout a sandbox may be given: a day (E2B's own limit for most plans).
    static let maxTimeoutSeconds = 86_400
    static let defaultTimeoutSeconds = 300
    static let maxMetadataEntries = 64

    func controlPlane(_ request: Request) async throws -> Response {
        let principal = try await authenticate(request)
        var path = request.uri.path
        if path.hasPrefix("/v2/") { path.removeFirst(3) }
        let parts = path.split(separator: "/").map(String.init)
        switch (request.method, parts.count) {
        case (.post, 1): return try await create(request, principal)
        case (.get, 1): return try await list(request, principal)
        case (.get, 2): return try await detail(parts[1], principal)
        case (.delete, 2): return try await kill(parts[1], principal)
        case (.post, 3) where parts[2] == "connect" || parts[2] == "resume": return try await connect(parts[1], request, principal)
        case (.post, 3) where parts[2] == "timeout": return try await setTimeout(parts[1], request, principal)
        case (.post, 3) where parts[2] == "pause": return try await pause(parts[1], principal)
        case (.get, 3) where parts[2] == "metrics": return try await metrics(parts[1], principal)
        default: throw E2BError(.notFound, "AgentBox's E2B API has no route \(request.method) \(request.uri.path)")
        }
    }

    /// The caller of `X-API-KEY: e2b_<token>`, where `<token>` is the server's token or an AgentBox API token, as it
    /// is or hex-encoded (e2b 2.45.1 accepts only `e2b_` and hex digits).
    func authenticate(_ request: Request) async throws -> AccessPrincipal {
        guard let key = request.headers[Self.apiKeyHeader] else { throw E2BError(.unauthorized, "missing X-API-KEY") }
        guard serverToken != nil else { return .server }
        guard key.hasPrefix("e2b_"), key.utf8.count <= 8192 else { throw E2BError(.unauthorized, "the API key must be e2b_<AgentBox token>") }
        let presented = String(key.dropFirst(4))
        var candidates = [presented]
        if let decoded = Self.hexDecoded(presented) { candidates.append(decoded) }
        for candidate in candidates {
            if let serverToken, constantTimeEquals(candidate, serverToken) { return .server }
            if let principal = await manager.principal(
                forToken: candidate, request: AuthHookRequest(method: request.method.rawValue, path: request.uri.path, workspace: nil))
            {
                return principal
            }
        }
        throw E2BError(.unauthorized, "invalid API key (unknown, revoked or expired AgentBox token)")
    }

    static func hexDecoded(_ text: String) -> String? {
        let digits = Array(text.utf8)
        guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// Refuses what the token may not do to sandbox `id`: a reader only reads, a user only its own workspaces.
    private func authorize(_ principal: AccessPrincipal, _ id: String, writing: Bool) throws {
        if writing, principal.role == .reader { throw E2BError(.forbidden, "a reader token may only read") }
        guard let key = WorkspaceKey(rawValue: id) else { throw E2BError(.notFound, "sandbox \(id) not found") }
        guard principal.covers(key) else { throw E2BError(.forbidden, "this token may not use sandbox \(id)") }
    }

    private func timeout(_ seconds: Int?) throws -> Int {
        let seconds = seconds ?? Self.defaultTimeoutSeconds
        guard (1...Self.maxTimeoutSeconds).contains(seconds) else {
            throw E2BError(.badRequest, "timeout must be 1...\(Self.maxTimeoutSeconds) seconds, not \(seconds)")
        }
        return seconds
    }

    private func create(_ request: Request, _ principal: AccessPrincipal) async throws -> Response {
        if principal.role == .reader { throw E2BError(.forbidden, "a reader token may not create sandboxes") }
        let body = try await collect(request)
        let new = try E2BJSON.decode(E2BNewSandbox.self, from: body)
        let template = new.templateID ?? E2BTemplate.base
        // Any other template is an AgentBox image of that name (`/v1/images`): the sandbox is a workspace made from
        // it, like one of the base template otherwise.
        var image: String?
        if !E2BTemplate.known.contains(template) {
            var exists = false
            if Image.isValidName(template) {
                do { exists = try await manager.image(name: template).name == template } catch let error as AgentBoxError where error.code == .notFound {}
            }
            guard exists else {
                throw E2BError(
                    .notFound, "template '\(template)' not found: AgentBox offers 'base', 'code-interpreter-v1' and its images (/v1/images) by name")
            }
            image = template
        }
        let seconds = try timeout(new.timeout)
        let metadata = new.metadata ?? [:]
        guard metadata.count <= Self.maxMetadataEntries, metadata.allSatisfy({ $0.key.utf8.count <= 256 && $0.value.utf8.count <= 4096 }) else {
            throw E2BError(.badRequest, "metadata: at most \(Self.maxMetadataEntries) entries, keys of 256 bytes, values of 4096")
        }
        // A token scoped to `prefix*` creates sandboxes whose ids start with the prefix; an admin's have none.
        let prefix =
            principal.role == .admin || principal.workspaces.contains("*")
            ? "" : principal.workspaces.first(where: { $0.hasSuffix("*") }).map { String($0.dropLast()) }
        guard let prefix else { throw E2BError(.forbidden, "this token may create no new workspace (its patterns name exact keys)") }
        let id = E2BSandboxes.makeID(prefix: prefix)
        guard let key = WorkspaceKey(rawValue: id), principal.covers(key) else {
            throw E2BError(.forbidden, "this token may not create sandbox \(id)")
        }
        let env = new.envVars.flatMap { $0.isEmpty ? nil : $0 }
        _ = try await manager.create(key: key, config: WorkspaceConfig(env: env, image: image))
        do {
            try await prepareHome(key)
        } catch {
            try? await manager.destroy(key: key)
            throw error
        }
        let now = Date()
        let record = E2BSandboxRecord(
            sandboxID: id, templateID: template == "code-interpreter" ? E2BTemplate.codeInterpreter : template, alias: nil,
            metadata: metadata, envVars: new.envVars ?? [:], accessToken: E2BSandboxes.randomString(32),
            trafficToken: E2BSandboxes.randomString(32), startedAt: now, endAt: now.addingTimeInterval(TimeInterval(seconds)),
            timeoutSeconds: seconds, paused: false)
        await sandboxes.insert(record)
        await sandboxes.grant(id, to: principal.tokenId)
        logger.info("e2b sandbox created", metadata: ["workspace.key": "\(id)", "e2b.template": "\(record.templateID)"])
        return E2BJSON.response(answer(record), status: .created)
    }

    /// Gives the workspace E2B's user: `/home/user`, a link to the persistent `/home/agent` that uid 1000 owns, and
    /// uid 1000 named `user` (home `/home/user`) in the workspace's own `/etc/passwd` and `/etc/group`, so that
    /// `whoami` and `~` answer as on E2B. Needs a workspace whose root may write `/home` and `/etc` (the server runs as
    /// root); elsewhere they stay AgentBox's.
    func prepareHome(_ key: WorkspaceKey) async throws {
        let runtime = try await manager.runtime(for: key)
        let script = """
            [ -e /home/user ] || ln -s /home/agent /home/user 2>/dev/null
            if grep -q '^agent:x:1000:' /etc/passwd 2>/dev/null; then
              sed -i 's|^agent:x:1000:1000:[^:]*:[^:]*:|user:x:1000:1000:E2B user:/home/user:|' /etc/passwd 2>/dev/null
              sed -i 's|^agent:x:1000:|user:x:1000:|' /etc/group 2>/dev/null
            fi
            true
            """
        let result = try await runtime.exec(ExecRequest(command: script, timeoutMs: 30_000))
        if result.exitCode != 0 { logger.warning("e2b: cannot link /home/user", metadata: ["workspace.key": "\(key)", "stderr": "\(result.stderr)"]) }
    }

    func answer(_ record: E2BSandboxRecord) -> E2BSandboxAnswer {
        E2BSandboxAnswer(
            templateID: record.templateID, sandboxID: record.sandboxID, clientID: "agentbox", envdVersion: Self.envdVersion,
            envdAccessToken: record.accessToken, trafficAccessToken: record.trafficToken, alias: record.alias)
    }

    /// The record of sandbox `id` when its workspace still exists (one deleted through /v1 is forgotten here too).
    private func existing(_ id: String) async throws -> (E2BSandboxRecord, Workspace)? {
        guard let record = await sandboxes.record(id) else { return nil }
        do {
            return (record, try await manager.workspace(key: record.key))
        } catch let error as AgentBoxError where error.code == .notFound {
            await sandboxes.remove(id)
            return nil
        }
    }

    private func listed(_ record: E2BSandboxRecord, _ workspace: Workspace, withToken: Bool = false) -> E2BListedSandbox {
        E2BListedSandbox(
            templateID: record.templateID, sandboxID: record.sandboxID, clientID: "agentbox", alias: record.alias,
            startedAt: E2BJSON.time(record.startedAt), endAt: E2BJSON.time(record.endAt),
            cpuCount: Self.cpuCount(workspace), memoryMB: Int(Self.memoryBytes(workspace) >> 20), diskSizeMB: workspace.limits.diskMb ?? 0,
            state: record.paused ? "paused" : "running", envdVersion: Self.envdVersion, metadata: record.metadata,
            envdAccessToken: withToken ? record.accessToken : nil)
    }

    static func cpuCount(_ workspace: Workspace) -> Int {
        workspace.limits.cpuPercent.map { max(1, ($0 + 99) / 100) } ?? ProcessInfo.processInfo.activeProcessorCount
    }

    static func memoryBytes(_ workspace: Workspace) -> Int64 {
        workspace.limits.memoryMb.map { Int64($0) << 20 } ?? Int64(ProcessInfo.processInfo.physicalMemory)
    }

    private func list(_ request: Request, _ principal: AccessPrincipal) async throws -> Response {
        let query = request.uri.queryParameters
        let states = Set(query.getAll("state").flatMap { $0.split(separator: ",").map { String($0) } })
        if let bad = states.first(where: { $0 != "running" && $0 != "paused" }) {
            throw E2BError(.badRequest, "state must be running or paused, not '\(bad)'")
        }
        var wanted: [String: String] = [:]
        if let metadata = query.get("metadata"), !metadata.isEmpty {
            for pair in metadata.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                    String($0).removingPercentEncoding ?? String($0)
                }
                guard parts.count == 2 else { throw E2BError(.badRequest, "metadata must be key=value pairs joined by &") }
                wanted[parts[0]] = parts[1]
            }
        }
        var limit = 100
        if let text = query.get("limit") {
            guard let number = Int(text), (1...1000).contains(number) else { throw E2BError(.badRequest, "limit must be 1...1000") }
            limit = number
        }
        let after = query.get("nextToken").flatMap { $0.isEmpty ? nil : $0 }
        var items: [E2BListedSandbox] = []
        var more = false
        var passed = after == nil
        for record in await sandboxes.all {
            if !passed {
                if record.sandboxID == after { passed = true }
                continue
            }
            guard let key = WorkspaceKey(rawValue: record.sandboxID), principal.covers(key) else { continue }
            guard states.isEmpty || states.contains(record.paused ? "paused" : "running") else { continue }
            guard wanted.allSatisfy({ record.metadata[$0.key] == $0.value }) else { continue }
            guard let (record, workspace) = try await existing(record.sandboxID) else { continue }
            if items.count == limit {
                more = true
                break
            }
            items.append(listed(record, workspace))
        }
        var headers: HTTPFields = [:]
        if more, let last = items.last { headers[HTTPField.Name("x-next-token")!] = last.sandboxID }
        return E2BJSON.response(items, headers: headers)
    }

    private func detail(_ id: String, _ principal: AccessPrincipal) async throws -> Response {
        try authorize(principal, id, writing: false)
        guard let (record, workspace) = try await existing(id) else { throw E2BError(.notFound, "sandbox \(id) not found") }
        await sandboxes.grant(id, to: principal.tokenId)
        return E2BJSON.response(listed(record, workspace, withToken: true))
    }

    private func kill(_ id: String, _ principal: AccessPrincipal) async throws -> Response {
        try authorize(principal, id, writing: true)
        guard try await existing(id) != nil else { throw E2BError(.notFound, "sandbox \(id) not found") }
        await kernels.forget(sandbox: id)
        await processes.forget(sandbox: id)
        await watchers.forget(sandbox: id)
        try await manager.destroy(key: WorkspaceKey(rawValue: id)!)
        await sandboxes.remove(id)
        logger.info("e2b sandbox killed", metadata: ["workspace.key": "\(id)"])
        return Response(status: .noContent)
    }

    private func connect(_ id: String, _ request: Request, _ principal: AccessPrincipal) async throws -> Response {
        try authorize(principal, id, writing: true)
        let body = try E2BJSON.decode(E2BTimeoutBody.self, from: try await collect(request))
        let seconds = try timeout(body.timeout)
        guard var record = await sandboxes.record(id) else {
            // A workspace made through /v1 becomes a sandbox of the base template when E2B connects to it.
            guard let key = WorkspaceKey(rawValue: id), (try? await manager.workspace(key: key)) != nil else {
                throw E2BError(.notFound, "sandbox \(id) not found")
            }
            try await prepareHome(key)
            let now = Date()
            let adopted = E2BSandboxRecord(
                sandboxID: id, templateID: E2BTemplate.base, alias: nil, metadata: [:], envVars: [:],
                accessToken: E2BSandboxes.randomString(32), trafficToken: E2BSandboxes.randomString(32), startedAt: now,
                endAt: now.addingTimeInterval(TimeInterval(seconds)), timeoutSeconds: seconds, paused: false)
            await sandboxes.insert(adopted)
            await sandboxes.grant(id, to: principal.tokenId)
            return E2BJSON.response(answer(adopted), status: .created)
        }
        guard try await existing(id) != nil else { throw E2BError(.notFound, "sandbox \(id) not found") }
        let resumed = record.paused
        record = await sandboxes.setPaused(id, false, timeoutSeconds: seconds) ?? record
        if resumed { logger.info("e2b sandbox resumed", metadata: ["workspace.key": "\(id)"]) }
        await sandboxes.grant(id, to: principal.tokenId)
        return E2BJSON.response(answer(record), status: resumed ? .created : .ok)
    }

    private func setTimeout(_ id: String, _ request: Request, _ principal: AccessPrincipal) async throws -> Response {
        try authorize(principal, id, writing: true)
        let body = try E2BJSON.decode(E2BTimeoutBody.self, from: try await collect(request))
        guard body.timeout != nil else { throw E2BError(.badRequest, "timeout is required") }
        guard try await existing(id) != nil else { throw E2BError(.notFound, "sandbox \(id) not found") }
        _ = try await sandboxes.setTimeout(id, seconds: try timeout(body.timeout))
        return Response(status: .noContent)
    }

    private func pause(_ id: String, _ principal: AccessPrincipal) async throws -> Response {
        try authorize(principal, id, writing: true)
        guard let (record, _) = try await existing(id) else { throw E2BError(.notFound, "sandbox \(id) not found") }
        if record.paused { throw E2BError(.conflict, "sandbox \(id) is already paused") }
        await kernels.forget(sandbox: id)
        _ = await sandboxes.setPaused(id, true)
        _ = try await manager.sleep(key: record.key)
        logger.info("e2b sandbox paused", metadata: ["workspace.key": "\(id)"])
        return Response(status: .noContent)
    }

    private func metrics(_ id: String, _ principal: AccessPrincipal) async throws -> Response {
        try authorize(principal, id, writing: false)
        guard let (_, workspace) = try await existing(id) else { throw E2BError(.notFound, "sandbox \(id) not found") }
        let sample = try await manager.metrics(key: workspace.key)
        let cpus = Self.cpuCount(workspace)
        let memoryTotal = Self.memoryBytes(workspace)
        // CPU use over the sandbox's life so far: what one sample can say (E2B samples every few seconds).
        let alive = max(1, Date().timeIntervalSince(workspace.createdAt) * 1000 * Double(cpus))
        let metric = E2BSandboxMetric(
            timestamp: E2BJSON.time(sample.sampledAt), timestampUnix: Int64(sample.sampledAt.timeIntervalSince1970), cpuCount: cpus,
            cpuUsedPct: min(100, Double(sample.cpuUsageMs) / alive * 100), memUsed: sample.memoryBytes, memTotal: memoryTotal,
            memCache: 0, diskUsed: sample.diskBytes, diskTotal: sample.diskLimitBytes ?? max(sample.diskBytes, Int64(workspace.limits.diskMb ?? 0) << 20))
        return E2BJSON.response([metric])
    }

    /// A control-plane body: JSON of at most 1 MiB.
    private func collect(_ request: Request) async throws -> Data {
        do {
            return Data(buffer: try await request.body.collect(upTo: 1 << 20))
        } catch {
            throw E2BError(.contentTooLarge, "the request body is larger than 1 MiB")
        }
    }
}
