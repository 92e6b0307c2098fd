import Foundation

/// Which addresses the egress proxy may connect to, whatever a workspace's policy says: none that is special-purpose
/// (loopback, private, carrier-grade NAT, link-local, unique local, ...; see ``SpecialPurposeRange``), none of the
/// host's own interfaces, and no IPv6 form of these; except in the ranges the server's admin allows.
///
/// The proxy asks it about every address it is about to connect to, after resolution, so a name allowed by a
/// workspace's policy (exactly or by a wildcard) cannot lead to such an address, and neither can DNS that changes its
/// answer. The host's loopback is reached only as ``EgressProxy/hostAlias``, which the proxy handles before.
public struct EgressAddressGuard: Sendable {
    /// Blocks the proxy may reach although they are special or the host's own (`serve --egress-allow-private`).
    public var allowedRanges: [IPNetwork]
    /// The host's interface addresses, read when the server starts.
    public var hostAddresses: Set<IPAddress>

    public init(allowedRanges: [IPNetwork] = [], hostAddresses: Set<IPAddress>) {
        self.allowedRanges = allowedRanges
        self.hostAddresses = hostAddresses
    }

    /// Why the proxy must not connect to `address`, completing "ADDRESS is …"; `nil` when it may.
    public func refusal(for address: IPAddress) -> String? {
        if allowedRanges.contains(where: { $0.contains(address) }) { return nil }
        if hostAddresses.contains(address) { return "an address of this host" }
        switch address.classification {
        case .global: return nil
        case .special(let range): return range.description
        case .embeds(let ipv4, let embedding):
            return refusal(for: ipv4).map { "the \(embedding) form of \(ipv4), which is \($0)" }
        }
    }

    /// The addresses of this host's interfaces now (`getifaddrs`), IPv4 and IPv6.
    public static func hostInterfaceAddresses() -> Set<IPAddress> {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var addresses: Set<IPAddress> = []
        var entry = list
        while let current = entry {
            entry = current.pointee.ifa_next
            guard let socketAddress = current.pointee.ifa_addr else { continue }
            switch Int32(socketAddress.pointee.sa_family) {
            case AF_INET:
                var raw = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                addresses.insert(IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) }))
            case AF_INET6:
                var raw = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                addresses.insert(IPAddress(bytes: withUnsafeBytes(of: &raw) { Array($0) }))
            default:
                continue
            }
        }
        return addresses
    }
}
