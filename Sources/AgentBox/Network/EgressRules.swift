import AgentBoxAPI
import Foundation
import Synchronization

/// A workspace's egress policy, parsed: which targets (`host`, `port`) its proxy may connect to.
///
/// Patterns: `example.com` (that host), `*.example.com` (its subdomains, not itself), `*` (any host), each with an
/// optional `:port` (any port without). IPv4 addresses are hosts like any other. Matching is on the target as the
/// process named it, case-insensitively.
///
/// The policy decides on names only. Whatever it says, the proxy then refuses every resolved address that
/// ``EgressAddressGuard`` refuses (the host's own, private, link-local, ...): a policy cannot open those, only the
/// server's admin can. The host's loopback is reached as ``EgressProxy/hostAlias``, and only with an entry naming the
/// alias exactly: `host.agentbox.internal:8080` allows a service on the host; `allow` or `*` alone does not.
public struct EgressRules: Sendable, Equatable {
    struct Pattern: Sendable, Equatable {
        /// Lower case; for a wildcard, the suffix after `*.` (empty for `*`).
        var host: String
        var wildcard: Bool
        var port: Int?
    }

    enum Mode: Sendable, Equatable {
        case deny, allow
        case list([Pattern])
    }

    let mode: Mode

    /// Rules that deny every target.
    public init() {
        mode = .deny
    }

    public init(_ policy: EgressPolicy) throws {
        switch policy {
        case .deny: mode = .deny
        case .allow: mode = .allow
        case .allowList(let patterns):
            guard patterns.count <= 256 else { throw AgentBoxError(.invalidArgument, "network.egress allows at most 256 patterns") }
            mode = .list(try patterns.map(Self.parse))
        }
    }

    static func parse(_ text: String) throws -> Pattern {
        let problem = AgentBoxError(
            .invalidArgument,
            "'\(text.prefix(100))' is not an egress pattern (host, *.domain or *, each with an optional :port)")
        var rest = Substring(text.lowercased())
        var port: Int?
        if let colon = rest.lastIndex(of: ":") {
            guard let value = Int(rest[rest.index(after: colon)...]), (1...65535).contains(value) else { throw problem }
            port = value
            rest = rest[..<colon]
        }
        if rest == "*" { return Pattern(host: "", wildcard: true, port: port) }
        let wildcard = rest.hasPrefix("*.")
        if wildcard { rest = rest.dropFirst(2) }
        let labels = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard !rest.isEmpty, rest.count <= 253,
            labels.allSatisfy({ label in
                !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                    && label.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-") }
            })
        else { throw problem }
        return Pattern(host: String(rest), wildcard: wildcard, port: port)
    }

    /// Whether the policy lets the workspace reach `host`:`port` (before the address check).
    public func allows(host: String, port: Int) -> Bool {
        switch mode {
        case .deny: false
        case .allow: true
        case .list(let patterns): patterns.contains { Self.matches($0, host: host.lowercased(), port: port) }
        }
    }

    /// Whether an entry names `host` itself (no wildcard), which is what reaching ``EgressProxy/hostAlias`` takes.
    public func namesExactly(host: String, port: Int) -> Bool {
        guard case .list(let patterns) = mode else { return false }
        return patterns.contains { !$0.wildcard && Self.matches($0, host: host.lowercased(), port: port) }
    }

    static func matches(_ pattern: Pattern, host: String, port: Int) -> Bool {
        if let wanted = pattern.port, wanted != port { return false }
        if !pattern.wildcard { return host == pattern.host }
        return pattern.host.isEmpty || host.hasSuffix("." + pattern.host)
    }
}

/// A workspace's egress rules as they are now. Its proxy reads them for each new connection, so that a change of the
/// workspace's network policy (`PUT /v1/workspaces/{key}` on an existing one) holds at once; connections already
/// made are not cut.
final class EgressRuleSource: Sendable {
    private let current: Mutex<EgressRules>

    init(_ rules: EgressRules) {
        current = Mutex(rules)
    }

    var rules: EgressRules { current.withLock { $0 } }

    func replace(_ rules: EgressRules) {
        current.withLock { $0 = rules }
    }
}
