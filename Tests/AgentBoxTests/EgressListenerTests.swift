@testable import AgentBox
import Foundation
import Testing

/// The egress proxy's listening socket is kept with a parked sandbox (issue 28); what a process queued on it between
/// the proxy's stop and the park is dropped, unread, before the next boot serves the socket.
@Suite struct EgressListenerTests {
    @Test func connectionsQueuedOnAKeptListenerAreDroppedUnread() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(bound == 0 && listen(listener, 16) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        // Two clients whose connections the kernel completes and queues, one having sent a request.
        var clients: [Int32] = []
        for _ in 0..<2 {
            let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            clients.append(client)
        }
        defer { clients.forEach { close($0) } }
        let request = Array("GET http://example.invalid/ HTTP/1.1\r\n\r\n".utf8)
        #expect(send(clients[0], request, request.count, 0) == request.count)

        #expect(EgressProxy.dropQueuedConnections(listener) == 2)
        #expect(EgressProxy.dropQueuedConnections(listener) == 0, "none left, and it does not block")
        var buffer = [UInt8](repeating: 0, count: 16)
        let read = recv(clients[0], &buffer, buffer.count, 0)
        #expect(read <= 0, "the client learns its request was not taken (reset)")
        // The socket still listens: a later connection is queued for the next boot's proxy.
        let later = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(later) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(later, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
    }
}
