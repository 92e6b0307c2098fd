import AgentBox
import AgentBoxAPI
import Foundation
import HTTPTypes
import Logging

/// What E2B knows of a sandbox beyond its workspace: template, metadata, environment, credentials, timeout.
struct E2BSandboxRecord: Codable, Sendable {
    var sandboxID: String
    var templateID: String
    var alias: String?
    var metadata: [String: String]
    var envVars: [String: String]
    /// The `X-Access-Token` of envd and the code interpreter's `/execute`.
    var accessToken: String
    /// The `E2B-Traffic-Access-Token` of the code interpreter's `/contexts`.
    var trafficToken: String
    var startedAt: Date
    /// When the sandbox pauses unless something extends it.
    var endAt: Date
    var timeoutSeconds: Int
    var paused: Bool
    /// The API tokens (ids) that were handed `accessToken` and `trafficToken`: revoking one replaces both.
    var grantees: [String]? = nil

    var key: WorkspaceKey { WorkspaceKey(rawValue: sandboxID)! }
}

/// Every E2B sandbox of the server: records kept in `<data>/e2b/sandboxes.json` (0600: it holds access tokens), and
/// one timer per running sandbox that pauses it (puts its workspace to sleep) when its timeout passes. Work in the
/// sandbox pushes the timeout on (an idle timeout: a sandbox in use never pauses under its user).
actor E2BSandboxes {
    private var records: [String: E2BSandboxRecord] = [:]
    private var timers: [String: Task<Void, Never>] = [:]
    /// Streams open per sandbox (a command being followed, an execution, a watch): a sandbox with one is in use.
    private var openStreams: [String: Int] = [:]
    private let file: URL
    private let manager: WorkspaceManager
    private let logger: Logger

    /// Pushing `endAt` on is written to disk at most this often per sandbox (every request would be a write).
    private static let extensionGranularity: TimeInterval = 5

    init(manager: WorkspaceManager) {
        self.manager = manager
        self.logger = manager.logger
        let directory = manager.configuration.dataDirectory.appendingPathComponent("e2b", isDirectory: true)
        file = directory.appendingPathComponent("sandboxes.json")
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if let data = try? Data(contentsOf: file), let loaded = try? JSONDecoder().decode([E2BSandboxRecord].self, from: data) {
            for record in loaded { records[record.sandboxID] = record }
        }
    }

    /// Arms the timers of the sandboxes loaded from disk, and watches the tokens they were handed to.
    func start() {
        for record in records.values where !record.paused { arm(record) }
        for tokenId in Set(records.values.flatMap { $0.grantees ?? [] }) { watch(tokenId) }
    }

    /// The tasks that wait for a grantee token's revocation, by token id.
    private var grantWatchers: [String: Task<Void, Never>] = [:]

    /// Records that API token `tokenId` (nil: the admin's, or a hook's) is handed sandbox `id`'s access tokens: when
    /// it is revoked they are replaced, so that what it obtained is refused at once too (a holder of another token
    /// connects again for the new ones).
    func grant(_ id: String, to tokenId: String?) {
        guard let tokenId, var record = records[id] else { return }
        if record.grantees?.contains(tokenId) != true {
            record.grantees = (record.grantees ?? []) + [tokenId]
            records[id] = record
            save()
        }
        watch(tokenId)
    }

    private func watch(_ tokenId: String) {
        guard grantWatchers[tokenId] == nil else { return }
        let manager = manager
        grantWatchers[tokenId] = Task { [weak self] in
            // Ends when the token is revoked (at once when it already was).
            for await _ in await manager.revocations(of: tokenId) {}
            guard !Task.isCancelled else { return }
            await self?.revoked(tokenId)
        }
    }

    private func revoked(_ tokenId: String) {
        grantWatchers[tokenId] = nil
        var changed = false
        for (id, var record) in records where record.grantees?.contains(tokenId) == true {
            record.accessToken = Self.randomString(32)
            record.trafficToken = Self.randomString(32)
            record.grantees = record.grantees?.filter { $0 != tokenId }
            records[id] = record
            changed = true
            logger.info("e2b sandbox's access tokens replaced: a token they were handed to was revoked", metadata: ["workspace.key": "\(id)", "token.id": "\(tokenId)"])
        }
        if changed { save() }
    }

    func record(_ id: String) -> E2BSandboxRecord? { records[id] }

    var all: [E2BSandboxRecord] { records.values.sorted { ($0.startedAt, $0.sandboxID) < ($1.startedAt, $1.sandboxID) } }

    func insert(_ record: E2BSandboxRecord) {
        records[record.sandboxID] = record
        save()
        arm(record)
    }

    func remove(_ id: String) {
        records[id] = nil
        timers.removeValue(forKey: id)?.cancel()
        save()
    }

    /// Sets the timeout: the sandbox pauses `seconds` from now (and after `seconds` without work from then on).
    func setTimeout(_ id: String, seconds: Int) throws(E2BError) -> E2BSandboxRecord {
        guard var record = records[id] else { throw E2BError(.notFound, "sandbox \(id) not found") }
        record.timeoutSeconds = seconds
        record.endAt = Date().addingTimeInterval(TimeInterval(seconds))
        records[id] = record
        save()
        if !record.paused { arm(record) }
        return record
    }

    /// Work reached the sandbox: its idle timeout starts again.
    func touch(_ id: String) {
        guard var record = records[id], !record.paused else { return }
        let end = Date().addingTimeInterval(TimeInterval(record.timeoutSeconds))
        guard end.timeIntervalSince(record.endAt) > Self.extensionGranularity else { return }
        record.endAt = end
        records[id] = record
        save()
        arm(record)
    }

    /// Marks the sandbox paused (its workspace is put to sleep by the caller) or running again.
    func setPaused(_ id: String, _ paused: Bool, timeoutSeconds: Int? = nil) -> E2BSandboxRecord? {
        guard var record = records[id] else { return nil }
        record.paused = paused
        if let timeoutSeconds { record.timeoutSeconds = timeoutSeconds }
        if !paused { record.endAt = Date().addingTimeInterval(TimeInterval(record.timeoutSeconds)) }
        records[id] = record
        save()
        if paused { timers.removeValue(forKey: id)?.cancel() } else { arm(record) }
        return record
    }

    private func arm(_ record: E2BSandboxRecord) {
        timers.removeValue(forKey: record.sandboxID)?.cancel()
        let id = record.sandboxID
        let delay = max(0, record.endAt.timeIntervalSinceNow)
        timers[id] = Task { [weak self] in
            do { try await Task.sleep(for: .milliseconds(Int64(delay * 1000))) } catch { return }
            await self?.timeoutPassed(id)
        }
    }

    /// A stream of the sandbox opened or closed: while one is open the sandbox is in use and does not pause.
    func streamOpened(_ id: String) { openStreams[id, default: 0] += 1 }

    func streamClosed(_ id: String) {
        openStreams[id, default: 1] -= 1
        if openStreams[id] == 0 { openStreams[id] = nil }
        touch(id)
    }

    private func timeoutPassed(_ id: String) async {
        guard var record = records[id], !record.paused else { return }
        if openStreams[id] != nil {
            // In use: look again a timeout from now.
            record.endAt = Date().addingTimeInterval(TimeInterval(record.timeoutSeconds))
            records[id] = record
            save()
        }
        if record.endAt.timeIntervalSinceNow > 0.5 {
            arm(record)
            return
        }
        timers[id] = nil
        _ = setPaused(id, true)
        logger.info("e2b sandbox timed out: paused", metadata: ["workspace.key": "\(id)"])
        _ = try? await manager.sleep(key: record.key)
    }

    private func save() {
        let data = (try? JSONEncoder().encode(all)) ?? Data("[]".utf8)
        let temporary = file.appendingPathExtension("tmp")
        FileManager.default.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600])
        _ = rename(temporary.path, file.path)
    }

    /// An id for a new sandbox: `prefix` (a token's pattern) and 20 random letters and digits.
    static func makeID(prefix: String = "") -> String {
        prefix + randomString(20)
    }

    /// `count` characters of `[a-z0-9]` from the system's cryptographic generator.
    static func randomString(_ count: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<count).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }
}
