import AgentBoxAPI
import Foundation
import Testing

@testable import AgentBox

@Suite("Client tools' call router", .timeLimit(.minutes(1)))
struct ToolCallRouterTests {
    static func request(_ id: String) -> ToolCallRequest {
        ToolCallRequest(callId: id, tool: "ask", input: ["q": "x"], workspace: WorkspaceKey(rawValue: "w")!)
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
