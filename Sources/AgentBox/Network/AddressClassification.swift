/// A block of addresses that is not an ordinary destination on the internet: the host itself, private networks,
/// link-local (where cloud metadata endpoints live), and what is not unicast at all. The egress proxy connects to none
/// of them unless the server's admin allows a range (`serve --egress-allow-private`).
///
/// The ranges are IANA's special-purpose registries (RFC 6890 and later), as SSRF guards and container runtimes
/// block them.
public enum SpecialPurposeRange: Sendable, Equatable, CustomStringConvertible {
    case unspecified, loopback, thisNetwork, privateNetwork, sharedAddressSpace, linkLocal, protocolAssignments
    case documentation, benchmarking, deprecatedRelay, multicast, broadcast, reserved
    case uniqueLocal, siteLocal, discardOnly, teredo, localNAT64

    /// Completes "ADDRESS is …".
    public var description: String {
        switch self {
        case .unspecified: "the unspecified address"
        case .loopback: "a loopback address"
        case .thisNetwork: "in 0.0.0.0/8 (this network)"
        case .privateNetwork: "in a private network (RFC 1918)"
        case .sharedAddressSpace: "in the carrier-grade NAT range 100.64.0.0/10"
        case .linkLocal: "link-local (where cloud metadata endpoints live)"
        case .protocolAssignments: "reserved for IETF protocol assignments"
        case .documentation: "reserved for documentation"
        case .benchmarking: "reserved for benchmarking"
        case .deprecatedRelay: "in the deprecated 6to4 relay anycast range 192.88.99.0/24"
        case .multicast: "multicast"
        case .broadcast: "the broadcast address"
        case .reserved: "reserved (not assigned for unicast)"
        case .uniqueLocal: "a unique local address (fc00::/7)"
        case .siteLocal: "site-local (fec0::/10, deprecated)"
        case .discardOnly: "discard-only (100::/64)"
        case .teredo: "a Teredo tunnel address (2001::/32)"
        case .localNAT64: "in the local-use NAT64 range 64:ff9b:1::/48"
        }
    }
}

/// How an IPv6 address carries an IPv4 one whose traffic it reaches (directly, or through a translator or relay).
public enum IPv4Embedding: String, Sendable, Equatable, CustomStringConvertible {
    /// `::ffff:a.b.c.d`: a dual-stack socket connects to `a.b.c.d` over IPv4.
    case mapped = "IPv4-mapped"
    /// `::ffff:0:a.b.c.d` (SIIT, RFC 2765).
    case translated = "IPv4-translated"
    /// `::a.b.c.d` (deprecated by RFC 4291).
    case compatible = "IPv4-compatible"
    /// `64:ff9b::a.b.c.d`: a NAT64 gateway connects to `a.b.c.d`.
    case nat64 = "NAT64"
    /// `2002:aabb:ccdd::/48`: a 6to4 relay forwards to `a.b.c.d`.
    case sixToFour = "6to4"

    public var description: String { rawValue }
}

/// What an address is, for deciding whether egress may reach it.
public enum AddressClassification: Sendable, Equatable {
    /// An ordinary unicast address of the internet.
    case global
    /// In a special-purpose block.
    case special(SpecialPurposeRange)
    /// An IPv6 form of an IPv4 address: judged as that address.
    case embeds(IPAddress, IPv4Embedding)
}

extension IPAddress {
    /// What this address is: global, special-purpose, or an IPv6 form of an IPv4 address. Decided on its bytes.
    public var classification: AddressClassification {
        if let (_, kind) = Self.blocks.first(where: { $0.network.contains(self) }) {
            switch kind {
            case .special(let range): return .special(range)
            case .embedding(let embedding):
                return .embeds(embeddedIPv4(at: embedding == .sixToFour ? 2 : 12), embedding)
            }
        }
        // IPv6 unicast on the internet is 2000::/3; the rest of the space is unassigned.
        if !isIPv4, bytes[0] & 0xE0 != 0x20 { return .special(.reserved) }
        return .global
    }

    private enum BlockKind {
        case special(SpecialPurposeRange)
        case embedding(IPv4Embedding)
    }

    /// The special blocks, most specific first, so that `::1` is loopback before `::/96` is IPv4-compatible and
    /// 255.255.255.255 is broadcast before 240.0.0.0/4 is reserved.
    private static let blocks: [(network: IPNetwork, kind: BlockKind)] = {
        let table: [(String, BlockKind)] = [
            ("0.0.0.0/32", .special(.unspecified)),
            ("255.255.255.255/32", .special(.broadcast)),
            ("0.0.0.0/8", .special(.thisNetwork)),
            ("10.0.0.0/8", .special(.privateNetwork)),
            ("100.64.0.0/10", .special(.sharedAddressSpace)),
            ("127.0.0.0/8", .special(.loopback)),
            ("169.254.0.0/16", .special(.linkLocal)),
            ("172.16.0.0/12", .special(.privateNetwork)),
            ("192.0.0.0/24", .special(.protocolAssignments)),
            ("192.0.2.0/24", .special(.documentation)),
            ("192.88.99.0/24", .special(.deprecatedRelay)),
            ("192.168.0.0/16", .special(.privateNetwork)),
            ("198.18.0.0/15", .special(.benchmarking)),
            ("198.51.100.0/24", .special(.documentation)),
            ("203.0.113.0/24", .special(.documentation)),
            ("224.0.0.0/4", .special(.multicast)),
            ("240.0.0.0/4", .special(.reserved)),
            ("::/128", .special(.unspecified)),
            ("::1/128", .special(.loopback)),
            ("::ffff:0:0/96", .embedding(.mapped)),
            ("::ffff:0:0:0/96", .embedding(.translated)),
            ("::/96", .embedding(.compatible)),
            ("64:ff9b::/96", .embedding(.nat64)),
            ("64:ff9b:1::/48", .special(.localNAT64)),
            ("100::/64", .special(.discardOnly)),
            ("2001::/32", .special(.teredo)),
            ("2001:2::/48", .special(.benchmarking)),
            ("2001::/23", .special(.protocolAssignments)),
            ("2001:db8::/32", .special(.documentation)),
            ("2002::/16", .embedding(.sixToFour)),
            ("3fff::/20", .special(.documentation)),
            ("fc00::/7", .special(.uniqueLocal)),
            ("fe80::/10", .special(.linkLocal)),
            ("fec0::/10", .special(.siteLocal)),
            ("ff00::/8", .special(.multicast)),
        ]
        return table.map { (IPNetwork($0.0)!, $0.1) }.sorted { $0.network.prefixLength > $1.network.prefixLength }
    }()
}
