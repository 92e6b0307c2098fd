import AgentBoxAPI
import Foundation
import Testing

@testable import AgentBox

@Suite("Client tools' call router", .timeLimit(.minutes(1)))
struct ToolCallRouterTests {
    static func request(_ id: String) -> ToolCallRequest {
        ToolCallRequest(callId: id, tool: "ask", input: ["q": "x"], workspace: WorkspaceKey(rawValue: "w")!)
    }

    /// A handler whose service is down fails the call at once, saying so, rather than after the call's whole timeout
    /// (the shared HTTP client retried the refused connection until then, and the call ended as a timeout).
    @Test func aHandlerThatRefusesTheConnectionFailsTheCallAtOnce() async throws {
        // A port nothing listens on: bound and closed.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &length) } }
        close(probe)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let result = await WorkspaceManager.callWebhook(
            HTTPToolHandler(url: "http://127.0.0.1:\(port)/hook"), Self.request("c1"), timeout: .seconds(30))
        guard case .failure(.error(let message)) = result else {
            Issue.record("expected a failure that says why, not \(result)")
            return
        }
        #expect(message == "the tool's handler at 127.0.0.1:\(port) refused the connection (is its service running?)")
    }

    @Test func aCallGoesToAClientAndItsReplyComesBack() async throws {
        let router = ToolCallRouter()
        let calls = router.subscribe(toolkit: "kit")
        let server = Task {
            for await call in calls {
                #expect(router.reply(toolkit: "kit", callId: call.callId, .success(["answer": .string(call.callId)])))
                #expect(!router.reply(toolkit: "kit", callId: call.callId, .success(nil)), "a second reply finds nothing")
                #expect(!router.reply(toolkit: "other", callId: call.callId, .success(nil)))
                return
            }
        }
        let result = await router.call(toolkit: "kit", Self.request("c1"), timeout: .seconds(10))
        #expect(result == .success(["answer": "c1"]))
        await server.value
    }

    @Test func withoutAClientACallFailsAtOnceAndAnUnansweredOneTimesOut() async throws {
        let router = ToolCallRouter()
        guard case .failure(.error(let message)) = await router.call(toolkit: "kit", Self.request("c1"), timeout: .seconds(10)) else {
            Issue.record("expected an error")
            return
        }
        #expect(message.contains("no client"))
        let calls = router.subscribe(toolkit: "kit")
        #expect(router.clientCount(toolkit: "kit") == 1)
        #expect(await router.call(toolkit: "kit", Self.request("c2"), timeout: .milliseconds(100)) == .failure(.timeout))
        #expect(!router.reply(toolkit: "kit", callId: "c2", .success(nil)), "a late reply finds nothing")
        _ = calls
    }

    @Test func aCancelledCallerDoesNotHang() async throws {
        let router = ToolCallRouter()
        let calls = router.subscribe(toolkit: "kit")
        let caller = Task { await router.call(toolkit: "kit", Self.request("c1"), timeout: .seconds(60)) }
        var iterator = calls.makeAsyncIterator()
        _ = await iterator.next()  // the call reached the client, which never answers
        caller.cancel()
        #expect(await caller.value == .failure(.error("cancelled")))
    }
}
