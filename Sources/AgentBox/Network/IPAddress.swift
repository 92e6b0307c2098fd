import Foundation
import NIOCore

/// An IPv4 or IPv6 address as its bytes in network order: what the egress proxy judges before it connects.
///
/// Made from a socket address the resolver returned, or parsed from the standard text forms only (`10.0.0.1`,
/// `fd00::1`, `::ffff:10.0.0.1`). The shorthand IPv4 forms that `inet_aton` and resolvers also take (`2130706433`,
/// `0x7f.1`, `0177.0.0.1`, `127.1`) are not addresses here: a target named that way is resolved like a name, and its
/// resolved bytes are what is judged.
///
/// ```swift
/// IPAddress("::ffff:10.0.0.1")?.classification  // .embeds(10.0.0.1, .mapped)
/// ```
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    public var isIPv4: Bool { bytes.count == 4 }

    /// The address of `bytes`, which must be 4 or 16 long.
    init(bytes: [UInt8]) {
        precondition(bytes.count == 4 || bytes.count == 16, "an IP address is 4 or 16 bytes")
        self.bytes = bytes
    }

    /// Parses dotted-decimal IPv4 (four parts of 0–255 without leading zeros) or IPv6 text (RFC 4291 forms, a dotted
    /// IPv4 tail included), nothing else: no brackets, zone, prefix or port.
    public init?(_ text: String) {
        guard !text.utf8.contains(0) else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v4) { Array($0) })
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            self.init(bytes: withUnsafeBytes(of: &v6) { Array($0) })
            return
        }
        return nil
    }

    /// The address of an IPv4 or IPv6 socket address (`nil` for a Unix socket).
    public init?(_ address: SocketAddress) {
        switch address {
        case .v4(let address):
            var raw = address.address.sin_addr
            self.init(bytes: withUnsafeBytes(of: &raw) { Array($0) })
        case .v6(let address):
            var raw = address.address.sin6_addr
            self.init(bytes: withUnsafeBytes(of: &raw) { Array($0) })
        case .unixDomainSocket:
            return nil
        }
    }

    /// The IPv4 address in the four bytes from `offset` of this IPv6 address.
    func embeddedIPv4(at offset: Int) -> IPAddress {
        IPAddress(bytes: Array(bytes[offset..<offset + 4]))
    }

    /// The standard text form (`inet_ntop`): `10.0.0.1`, `fd00::1`, `::ffff:10.0.0.1`.
    public var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = isIPv4 ? AF_INET : AF_INET6
        _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A block of addresses, `ADDRESS/PREFIX` (CIDR): the ranges a server admin lets egress reach.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the block (its host bits are zero).
    public let address: IPAddress
    /// How many leading bits every address of the block shares with ``address``.
    public let prefixLength: Int

    private init(_ address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `10.0.0.0/8`, `fd00::/8`, or a bare address (a block of one). `nil` for anything else, and for a block
    /// whose address has bits set past the prefix (`10.0.0.1/8`: a typo that would open more or less than meant).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let bits = address.bytes.count * 8
        var length = bits
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].utf8.allSatisfy({ (0x30...0x39).contains($0) }), parts[1].count <= 3,
                let value = Int(parts[1]), value <= bits
            else { return nil }
            length = value
        }
        let network = IPNetwork(address, prefixLength: length)
        guard network.masked(address) == address else { return nil }
        self = network
    }

    /// Whether `other` is in this block (an address of the other family never is).
    public func contains(_ other: IPAddress) -> Bool {
        guard other.bytes.count == address.bytes.count else { return false }
        return masked(other) == address
    }

    /// `other` with the bits past the prefix cleared.
    private func masked(_ other: IPAddress) -> IPAddress {
        var bytes = other.bytes
        for index in bytes.indices {
            let kept = min(max(prefixLength - index * 8, 0), 8)
            bytes[index] &= kept == 0 ? 0 : ~UInt8(0) << (8 - kept)
        }
        return IPAddress(bytes: bytes)
    }

    public var description: String { "\(address)/\(prefixLength)" }
}
