import NIOCore
import Testing

@testable import AgentBox

@Suite("Egress address classification")
struct EgressAddressTests {
    /// One address of each block and its edges, IPv4, IPv6 and the IPv6 forms that carry IPv4.
    static let classified: [(String, AddressClassification)] = [
        ("0.0.0.0", .special(.unspecified)), ("0.1.2.3", .special(.thisNetwork)),
        ("10.0.0.1", .special(.privateNetwork)), ("10.255.255.255", .special(.privateNetwork)),
        ("172.16.0.1", .special(.privateNetwork)), ("172.31.255.255", .special(.privateNetwork)),
        ("172.15.255.255", .global), ("172.32.0.1", .global),
        ("192.168.0.1", .special(.privateNetwork)), ("192.169.0.1", .global),
        ("100.64.0.1", .special(.sharedAddressSpace)), ("100.127.255.255", .special(.sharedAddressSpace)),
        ("100.63.255.255", .global), ("100.128.0.1", .global),
        ("127.0.0.1", .special(.loopback)), ("127.255.255.254", .special(.loopback)),
        ("169.254.169.254", .special(.linkLocal)), ("169.254.0.1", .special(.linkLocal)),
        ("192.0.0.8", .special(.protocolAssignments)),
        ("192.0.2.2", .special(.documentation)), ("198.51.100.7", .special(.documentation)), ("203.0.113.9", .special(.documentation)),
        ("192.88.99.1", .special(.deprecatedRelay)),
        ("198.18.0.1", .special(.benchmarking)), ("198.19.255.255", .special(.benchmarking)), ("198.20.0.1", .global),
        ("224.0.0.1", .special(.multicast)), ("239.255.255.250", .special(.multicast)),
        ("240.0.0.1", .special(.reserved)), ("255.255.255.254", .special(.reserved)), ("255.255.255.255", .special(.broadcast)),
        ("8.8.8.8", .global), ("1.1.1.1", .global), ("11.213.7.1", .global),
        ("::", .special(.unspecified)), ("::1", .special(.loopback)),
        ("::ffff:127.0.0.1", .embeds(IPAddress("127.0.0.1")!, .mapped)),
        ("::ffff:10.0.0.1", .embeds(IPAddress("10.0.0.1")!, .mapped)),
        ("::ffff:a9fe:a9fe", .embeds(IPAddress("169.254.169.254")!, .mapped)),
        ("::ffff:0:10.0.0.1", .embeds(IPAddress("10.0.0.1")!, .translated)),
        ("::10.0.0.1", .embeds(IPAddress("10.0.0.1")!, .compatible)),
        ("::127.0.0.1", .embeds(IPAddress("127.0.0.1")!, .compatible)),
        ("64:ff9b::a9fe:a9fe", .embeds(IPAddress("169.254.169.254")!, .nat64)),
        ("64:ff9b::8.8.8.8", .embeds(IPAddress("8.8.8.8")!, .nat64)),
        ("2002:a00:1::1", .embeds(IPAddress("10.0.0.1")!, .sixToFour)),
        ("2002:c0a8:101::", .embeds(IPAddress("192.168.1.1")!, .sixToFour)),
        ("64:ff9b:1::1", .special(.localNAT64)), ("100::1", .special(.discardOnly)),
        ("2001::1", .special(.teredo)), ("2001:2::1", .special(.benchmarking)), ("2001:10::1", .special(.protocolAssignments)),
        ("2001:db8::1", .special(.documentation)), ("3fff::1", .special(.documentation)),
        ("fc00::1", .special(.uniqueLocal)), ("fd00::2", .special(.uniqueLocal)), ("fdff:ffff::1", .special(.uniqueLocal)),
        ("fe80::1", .special(.linkLocal)), ("febf::1", .special(.linkLocal)), ("fec0::1", .special(.siteLocal)),
        ("ff02::1", .special(.multicast)), ("ff0e::1", .special(.multicast)),
        ("1::1", .special(.reserved)), ("4000::1", .special(.reserved)),
        ("2606:4700::1111", .global), ("2a00:1450::1", .global), ("2001:200::1", .global),
    ]

    @Test(arguments: classified)
    func eachBlockIsRecognizedOnItsBytes(text: String, expected: AddressClassification) throws {
        let address = try #require(IPAddress(text))
        #expect(address.classification == expected, "\(text)")
    }

    @Test func onlyStandardTextIsAnAddress() {
        #expect(IPAddress("10.0.0.1")?.bytes == [10, 0, 0, 1])
        #expect(IPAddress("::ffff:10.0.0.1")?.bytes == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 0, 0, 1])
        #expect(IPAddress("::ffff:10.0.0.1")?.description == "::ffff:10.0.0.1")
        // What `inet_aton` and resolvers also take is a name here: it is resolved, and its bytes are judged.
        for text in ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1", "01.2.3.4", "1.2.3.256", "1.2.3.4.5",
            "[::1]", "fe80::1%eth0", "10.0.0.1/8", "10.0.0.1\u{0}", "", " 10.0.0.1", "localhost"]
        {
            #expect(IPAddress(text) == nil, "\(text)")
        }
    }

    @Test func numericFormsResolveToTheAddressTheyMeanAndAreRefused() throws {
        let guarding = EgressAddressGuard(hostAddresses: [])
        for text in ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1", "127.1", "localhost"] {
            let resolved = try EgressProxy.resolve(host: text, port: 80).compactMap { IPAddress($0) }
            #expect(!resolved.isEmpty && resolved.allSatisfy { guarding.refusal(for: $0) == "a loopback address" }, "\(text): \(resolved)")
        }
        let ten = try EgressProxy.resolve(host: "167772161", port: 80).compactMap { IPAddress($0) }
        #expect(ten == [IPAddress("10.0.0.1")!])
    }

    @Test func blocksParseStrictlyAndContainTheirOwnFamilyOnly() throws {
        let ten = try #require(IPNetwork("10.0.0.0/8"))
        #expect(ten.contains(IPAddress("10.255.0.1")!) && !ten.contains(IPAddress("11.0.0.1")!))
        #expect(!ten.contains(IPAddress("::ffff:10.0.0.1")!), "an IPv6 form is judged through what it embeds, not here")
        let odd = try #require(IPNetwork("172.16.0.0/12"))
        #expect(odd.contains(IPAddress("172.31.255.255")!) && !odd.contains(IPAddress("172.32.0.0")!))
        #expect(IPNetwork("fd00::/8")?.contains(IPAddress("fdab::1")!) == true)
        #expect(IPNetwork("10.1.2.3")?.description == "10.1.2.3/32")
        #expect(IPNetwork("0.0.0.0/0")?.contains(IPAddress("8.8.8.8")!) == true)
        for text in ["10.0.0.1/8", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10/8", "10.0.0.0/8/8", "x/8", "fd00::1/8"] {
            #expect(IPNetwork(text) == nil, "\(text)")
        }
    }

    @Test func theGuardRefusesSpecialAndHostAddressesUnlessTheAdminAllowsThem() {
        let plain = EgressAddressGuard(hostAddresses: [])
        #expect(plain.refusal(for: IPAddress("10.0.0.1")!) == "in a private network (RFC 1918)")
        #expect(plain.refusal(for: IPAddress("::ffff:10.0.0.1")!) == "the IPv4-mapped form of 10.0.0.1, which is in a private network (RFC 1918)")
        #expect(plain.refusal(for: IPAddress("64:ff9b::a9fe:a9fe")!)?.hasPrefix("the NAT64 form of 169.254.169.254") == true)
        #expect(plain.refusal(for: IPAddress("8.8.8.8")!) == nil)
        #expect(plain.refusal(for: IPAddress("::ffff:8.8.8.8")!) == nil)
        #expect(plain.refusal(for: IPAddress("2002:808:808::1")!) == nil)

        // A host address of no special block is still the host.
        let host = EgressAddressGuard(hostAddresses: [IPAddress("11.213.7.1")!, IPAddress("2a00::5")!])
        for text in ["11.213.7.1", "::ffff:11.213.7.1", "64:ff9b::bd5:701", "2002:bd5:701::1", "2a00::5"] {
            #expect(host.refusal(for: IPAddress(text)!) != nil, "\(text)")
        }
        #expect(host.refusal(for: IPAddress("11.213.7.2")!) == nil)

        // The admin's blocks open exactly themselves, in every form, host addresses included.
        let admin = EgressAddressGuard(
            allowedRanges: [IPNetwork("10.1.0.0/16")!, IPNetwork("fd00::/8")!, IPNetwork("11.213.7.1")!],
            hostAddresses: [IPAddress("11.213.7.1")!])
        for text in ["10.1.2.3", "::ffff:10.1.2.3", "fd00::2", "11.213.7.1"] {
            #expect(admin.refusal(for: IPAddress(text)!) == nil, "\(text)")
        }
        for text in ["10.2.0.1", "::ffff:10.2.0.1", "fc00::1", "127.0.0.1", "169.254.169.254"] {
            #expect(admin.refusal(for: IPAddress(text)!) != nil, "\(text)")
        }
    }

    @Test func theHostsInterfaceAddressesAreRead() {
        #expect(EgressAddressGuard.hostInterfaceAddresses().contains(IPAddress("127.0.0.1")!))
    }
}
