import AgentBoxAPI
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// A model provider whose API the gateway serves under `/llm/{provider}/`.
public enum LLMProvider: String, Sendable, CaseIterable {
    case anthropic
    case openai

    /// The variable that carries the key, in the server's environment (the real one) and in a workspace's (its
    /// gateway key).
    public var keyVariable: String {
        switch self {
        case .anthropic: "ANTHROPIC_API_KEY"
        case .openai: "OPENAI_API_KEY"
        }
    }

    /// The variable that points the provider's SDKs and CLIs at a base URL.
    public var baseURLVariable: String {
        switch self {
        case .anthropic: "ANTHROPIC_BASE_URL"
        case .openai: "OPENAI_BASE_URL"
        }
    }

    /// The provider's API as a workspace reaches it: the host's loopback, through the egress proxy.
    func workspaceBaseURL(port: Int) -> String {
        switch self {
        case .anthropic: "http://\(EgressProxy.hostAlias):\(port)/llm/anthropic"
        case .openai: "http://\(EgressProxy.hostAlias):\(port)/llm/openai/v1"
        }
    }

    /// The upstream a provider has when none is configured.
    public var standardUpstream: URL {
        switch self {
        case .anthropic: URL(string: "https://api.anthropic.com")!
        case .openai: URL(string: "https://api.openai.com")!
        }
    }

    /// The endpoint `path` (after `/llm/{provider}`) names, or `nil` for one the gateway does not serve.
    func endpoint(_ path: String) -> LLMEndpoint? {
        switch (self, path) {
        case (.anthropic, "/v1/messages"): .anthropicMessages
        case (.anthropic, "/v1/messages/count_tokens"): .anthropicCountTokens
        case (.openai, "/v1/responses"): .openAIResponses
        case (.openai, "/v1/chat/completions"): .openAIChatCompletions
        default: nil
        }
    }
}

/// Where the gateway sends one provider's calls, with the real key.
public struct LLMUpstream: Sendable {
    /// The API's root (`https://api.anthropic.com`); the endpoint's path is appended.
    public var url: URL
    public var key: String

    public init(url: URL, key: String) {
        self.url = url
        self.key = key
    }
}

/// The LLM gateway's settings and keys: the providers it forwards to with the real keys, and the secret from which
/// every workspace's gateway key is derived.
///
/// A gateway key is `abx-llm-{workspace key, base64url}.{session id}.{MAC}`, where the MAC is HMAC-SHA256 under the
/// server's secret of the workspace's key, its id (new at every creation) and the session. So a key is checked with
/// no lookup but the workspace's record, it names its workspace and session unforgeably, and it dies with its
/// workspace: a workspace created again under the same key has another id. The secret is made once, 32 random
/// bytes in `<data>/llm-gateway.secret` (0600), so keys survive restarts.
public final class LLMGateway: Sendable {
    public let upstreams: [LLMProvider: LLMUpstream]
    /// The model calls' client, made at the first call (so that a gateway that forwards nothing owns nothing to shut
    /// down): connections kept alive per upstream; a call whose upstream sends nothing for ``readTimeout`` ends as a
    /// timeout. ``shutdown()`` (the manager's) ends it.
    private let madeClient = Mutex<HTTPClient?>(nil)
    private let secret: SymmetricKey
    private let listeningPort = Atomic<Int>(0)

    public static let readTimeout: TimeAmount = .seconds(600)
    /// The most a request body may hold (the server refuses more before it reaches the gateway).
    public static let maxRequestBytes = 32 << 20

    /// Reads (or makes) the secret in `dataDirectory`. Throws when it cannot.
    public init(upstreams: [LLMProvider: LLMUpstream], dataDirectory: URL) throws {
        self.upstreams = upstreams
        secret = SymmetricKey(data: try Self.loadSecret(dataDirectory.appendingPathComponent("llm-gateway.secret")))
    }

    var client: HTTPClient {
        madeClient.withLock { made in
            if let made { return made }
            var configuration = HTTPClient.Configuration()
            configuration.timeout = .init(connect: .seconds(10), read: Self.readTimeout)
            // An upstream that refuses the connection is a 502 at once (the agent's SDK retries as it sees fit), not
            // after the connect timeout's worth of retries.
            configuration.connectionPool.retryConnectionEstablishment = false
            configuration.decompression = .disabled
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            made = client
            return client
        }
    }

    /// The port the server listens on, once it does: workspaces reach the gateway there.
    public var port: Int? {
        let port = listeningPort.load(ordering: .relaxed)
        return port == 0 ? nil : port
    }

    /// Tells the gateway the port the server listens on.
    public func serverStarted(port: Int) {
        listeningPort.store(port, ordering: .relaxed)
    }

    func shutdown() async {
        let client = madeClient.withLock { made in
            defer { made = nil }
            return made
        }
        try? await client?.shutdown()
    }

    // MARK: Keys

    static let keyPrefix = "abx-llm-"

    /// The gateway key of workspace `key` (whose record id is `id`), for `session` or for the workspace's other
    /// processes.
    func key(workspace key: WorkspaceKey, id: String, session: String?) -> String {
        let name = Data(key.rawValue.utf8).base64URLEncoded
        return "\(Self.keyPrefix)\(name).\(session ?? "").\(mac(workspace: key, id: id, session: session).base64URLEncoded)"
    }

    /// The workspace and session a key claims, before it is checked (``verify(_:id:)``); `nil` when it is no gateway
    /// key.
    static func claim(_ text: String) -> (workspace: WorkspaceKey, session: String?, mac: Data)? {
        guard text.hasPrefix(keyPrefix), text.utf8.count <= 512 else { return nil }
        let parts = text.dropFirst(keyPrefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let name = Data(base64URLEncoded: String(parts[0])), let mac = Data(base64URLEncoded: String(parts[2])),
            let key = WorkspaceKey(rawValue: String(decoding: name, as: UTF8.self))
        else { return nil }
        let session = parts[1].isEmpty ? nil : String(parts[1])
        return (key, session, mac)
    }

    /// The key a request presents: `x-api-key` (Anthropic's own), else a bearer token. The gateway checks this one,
    /// and each workspace's egress proxy holds it to that workspace (``claimedWorkspaces(in:)``): one function, so that
    /// the two can never look at different headers.
    static func presentedKey(in headers: HTTPHeaders) -> String? {
        headers.first(name: "x-api-key")
            ?? headers.first(name: "authorization").flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
    }

    /// The workspaces that the gateway keys in `headers` claim, unchecked: the presented key's, and any other key-shaped
    /// word in `Authorization`, `x-api-key` or `x-goog-api-key` (a proxy refuses the request when any of them is not its
    /// workspace's).
    static func claimedWorkspaces(in headers: HTTPHeaders) -> [WorkspaceKey] {
        var claimed: [WorkspaceKey] = []
        if let presented = presentedKey(in: headers), let claim = claim(presented) { claimed.append(claim.workspace) }
        for name in ["authorization", "x-api-key", "x-goog-api-key"] {
            for value in headers[name] {
                for word in value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }) where word.hasPrefix(keyPrefix) {
                    if let claim = claim(String(word)) { claimed.append(claim.workspace) }
                }
            }
        }
        return claimed
    }

    /// Whether `claim` was made by this server for the workspace whose record id is `id`.
    func verify(_ claim: (workspace: WorkspaceKey, session: String?, mac: Data), id: String) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(claim.mac, authenticating: Self.macInput(claim.workspace, id, claim.session), using: secret)
    }

    private func mac(workspace key: WorkspaceKey, id: String, session: String?) -> Data {
        Data(HMAC<SHA256>.authenticationCode(for: Self.macInput(key, id, session), using: secret))
    }

    private static func macInput(_ key: WorkspaceKey, _ id: String, _ session: String?) -> Data {
        Data("agentbox-llm-v1\n\(key.rawValue)\n\(id)\n\(session ?? "")".utf8)
    }

    private static func loadSecret(_ file: URL) throws -> Data {
        if let data = try? Data(contentsOf: file), data.count == 32 { return data }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let data = Data(bytes)
        let temporary = file.appendingPathExtension("partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw AgentBoxError(.internalError, "cannot write the LLM gateway's secret at \(file.path)")
        }
        guard rename(temporary.path, file.path) == 0 else {
            throw AgentBoxError(.internalError, "cannot write the LLM gateway's secret at \(file.path): \(String(cString: strerror(errno)))")
        }
        return data
    }
}

extension Data {
    /// Base64url without padding.
    var base64URLEncoded: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    init?(base64URLEncoded text: String) {
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        self.init(base64Encoded: base64)
    }
}
