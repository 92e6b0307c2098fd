import AgentBox
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import AgentBoxServer

/// The preview proxy's state machine alone: events in, actions out, no channel.
@Suite("Preview proxy state machine")
struct PreviewProxyStateMachineTests {
    typealias Machine = PreviewProxyStateMachine
    static let token = "abcdefghijklmnopqrstuvwxyz012345"
    static let base = "/preview/\(token)"

    static func link(_ id: UInt64, writable: Bool = true) -> Machine.UpstreamLink { .init(id: .init(rawValue: id), isWritable: writable) }
    static func id(_ id: UInt64) -> Machine.UpstreamID { .init(rawValue: id) }

    /// Runs the cold path of a preview request whose head is `part`: resolved to a new connection `upstream`.
    static func startPreview(_ machine: inout Machine, _ part: HTTPServerRequestPart, upstream: UInt64 = 1) -> [String] {
        [proxySummary(machine.requestPartReceived(part)), proxySummary(machine.resolved(port: 8000, upstream: link(upstream)))]
    }

    /// The workspace's server answers 200 with `body` on connection `upstream`.
    static func answer(_ machine: inout Machine, upstream: UInt64 = 1, body: String = "hello") -> [String] {
        [
            proxySummary(machine.upstreamResponsePart(.head(.init(version: .http1_1, status: .ok, headers: ["content-length": "\(body.utf8.count)"])), from: id(upstream))),
            proxySummary(machine.upstreamResponsePart(.body(ByteBuffer(string: body)), from: id(upstream))),
            proxySummary(machine.upstreamResponsePart(.end(nil), from: id(upstream))),
        ]
    }

    /// Hands on what waits, as the handler does after a `drain` or an answer's end.
    static func drain(_ machine: inout Machine) -> [String] {
        var actions: [String] = []
        while let action = machine.nextWaitingPart() { actions.append(proxySummary(action)) }
        return actions
    }

    // MARK: The two paths

    @Test func routeRequestsGoOnUnchangedAndPipelinedOnesTooInOrder() {
        var machine = Machine(previewDomain: nil)
        #expect(proxySummary(machine.requestPartReceived(proxyRequest("/v1/health"))) == "routes head GET /v1/health")
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "routes end")
        #expect(proxySummary(machine.requestPartReceived(proxyRequest("/v1/workspaces", method: .POST))) == "routes head POST /v1/workspaces")
        #expect(proxySummary(machine.requestPartReceived(.body(ByteBuffer(string: "{}")))) == "routes body 2")
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "routes end")
        #expect(machine.readRequested() == true, "nothing waits: reading goes on")
        #expect(proxySummary(machine.routeAnswerEnded()) == "none")
        #expect(proxySummary(machine.routeAnswerEnded()) == "none")
        #expect(proxySummary(machine.routeAnswerEnded()) == "none", "an answer end with no route request in flight is ignored")
        #expect(proxySummary(machine.requestPartReceived(proxyRequest("/v1/health"))) == "routes head GET /v1/health")
    }

    @Test func aColdPreviewRequestIsResolvedThenRelayedPartByPart() {
        var machine = Machine(previewDomain: nil)
        #expect(proxySummary(machine.requestPartReceived(proxyRequest(Self.base + "/a?b=c", method: .POST, [("host", "x"), ("content-length", "6")]))) == "resolve \(Self.token) connect")
        #expect(machine.readRequested() == false, "reading pauses while the token is resolved")
        #expect(proxySummary(machine.requestPartReceived(.body(ByteBuffer(string: "abc")))) == "none", "kept until the request can be sent")
        guard case .sendRequest(let sent, _) = machine.resolved(port: 8000, upstream: Self.link(1)) else {
            Issue.record("the request goes out once resolved")
            return
        }
        #expect(sent.uri == "/a?b=c" && sent.headers["host"] == ["localhost:8000"] && sent.headers["x-forwarded-prefix"] == [Self.base])
        #expect(machine.resumeReading() == true, "the held read goes on")
        #expect(machine.resumeReading() == false, "once")
        #expect(proxySummary(machine.requestPartReceived(.body(ByteBuffer(string: "def")))) == "upstream body 3")
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "upstream end")
        #expect(Self.answer(&machine) == ["response 200", "response body 5", "end, then next"])
        #expect(machine.readRequested() == true)
    }

    @Test func partsThatCameWhileResolvingGoOutWithTheHead() {
        var machine = Machine(previewDomain: nil)
        _ = machine.requestPartReceived(proxyRequest(Self.base + "/up", method: .PUT, [("host", "x"), ("content-length", "3")]))
        _ = machine.requestPartReceived(.body(ByteBuffer(string: "abc")))
        _ = machine.requestPartReceived(.end(nil))
        #expect(proxySummary(machine.resolved(port: 8000, upstream: Self.link(1))) == "send PUT /up + body 3 + end")
        // Body bytes went out: a close before the answer cannot be retried.
        #expect(proxySummary(machine.upstreamInactive(Self.id(1))) == "problem 502, then next")
    }

    @Test func theNextRequestReusesTheConnectionWhenItsTokenStillLeadsThere() {
        var machine = Machine(previewDomain: nil)
        #expect(Self.startPreview(&machine, proxyRequest(Self.base + "/one")) == ["resolve \(Self.token) connect", "send GET /one"])
        _ = machine.requestPartReceived(.end(nil))
        _ = Self.answer(&machine)
        #expect(proxySummary(machine.requestPartReceived(proxyRequest(Self.base + "/two"))) == "resolve \(Self.token) connect reuse 1")
        #expect(proxySummary(machine.resolved(port: 8000, upstream: Self.link(1))) == "send GET /two")
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "upstream end")
        #expect(Self.answer(&machine) == ["response 200", "response body 5", "end, then next"])
        // Another token: the handler closes connection 1 and opens 2.
        #expect(proxySummary(machine.requestPartReceived(proxyRequest("/preview/other/three"))) == "resolve other connect reuse 1")
        #expect(proxySummary(machine.resolved(port: 9000, upstream: Self.link(2))) == "send GET /three")
        #expect(proxySummary(machine.upstreamResponsePart(.end(nil), from: Self.id(1))) == "none", "the old connection has no say")
    }

    @Test func hostBasedPreviewsAndTheirTargets() {
        var machine = Machine(previewDomain: "preview.test")
        let request = proxyRequest("/assets/app.js?v=2", [("host", "\(Self.token).preview.test:8080")])
        guard case .resolve(let resolution) = machine.requestPartReceived(request) else {
            Issue.record("a preview host is a preview")
            return
        }
        #expect(resolution.token == Self.token)
        guard case .sendRequest(let sent, _) = machine.resolved(port: 8000, upstream: Self.link(1)) else {
            Issue.record("sent")
            return
        }
        #expect(sent.uri == "/assets/app.js?v=2" && sent.headers["x-forwarded-host"] == ["\(Self.token).preview.test:8080"] && sent.headers["x-forwarded-prefix"] == [""])
        var other = Machine(previewDomain: "preview.test")
        #expect(proxySummary(other.requestPartReceived(proxyRequest("/v1/health", [("host", "api.example")]))) == "routes head GET /v1/health")
    }

    // MARK: Answers given here

    @Test func theBarePreviewRedirectsToItsDirectoryOnceTheTokenHolds() {
        var machine = Machine(previewDomain: nil)
        #expect(proxySummary(machine.requestPartReceived(proxyRequest(Self.base + "?q=1"))) == "resolve \(Self.token)", "no connection is needed")
        guard case .answer(.head(let redirect), let end) = machine.resolved(port: 8000, upstream: nil) else {
            Issue.record("answered here")
            return
        }
        #expect(redirect.status == .permanentRedirect && redirect.headers["location"] == [Self.base + "/?q=1"] && end == .init(closesConnection: false))
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "none", "the request's end is dropped")
        #expect(proxySummary(machine.requestPartReceived(proxyRequest("/v1/health"))) == "routes head GET /v1/health")
    }

    @Test func aPreflightIsAnsweredHereAndKeepsTheOpenConnection() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/a"))
        _ = machine.requestPartReceived(.end(nil))
        _ = Self.answer(&machine)
        let preflight = proxyRequest(Self.base + "/api", method: .OPTIONS, [("host", "x"), ("origin", "http://o"), ("access-control-request-method", "PUT")])
        #expect(proxySummary(machine.requestPartReceived(preflight)) == "resolve \(Self.token) reuse 1")
        guard case .answer(.head(let answer), _) = machine.resolved(port: 8000, upstream: Self.link(1)) else {
            Issue.record("answered here")
            return
        }
        #expect(answer.status == .noContent && answer.headers["access-control-allow-methods"] == ["PUT"])
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "none")
        #expect(proxySummary(machine.requestPartReceived(proxyRequest(Self.base + "/b"))) == "resolve \(Self.token) connect reuse 1")
    }

    @Test func anUnknownTokenIsAProblemAndTheRestOfItsBodyIsDropped() {
        var machine = Machine(previewDomain: nil)
        _ = machine.requestPartReceived(proxyRequest(Self.base + "/x", method: .POST, [("host", "x"), ("content-length", "6")]))
        _ = machine.requestPartReceived(.body(ByteBuffer(string: "abc")))
        #expect(proxySummary(machine.resolutionFailed(AgentBoxError(.notFound, "no such preview"))) == "problem 404, then next")
        #expect(proxySummary(machine.requestPartReceived(.body(ByteBuffer(string: "def")))) == "none")
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "none")
        #expect(proxySummary(machine.requestPartReceived(proxyRequest("/v1/health"))) == "routes head GET /v1/health")
    }

    @Test func aResolutionWithoutAConnectionWhereOneIsNeededIsABadGateway() {
        var machine = Machine(previewDomain: nil)
        _ = machine.requestPartReceived(proxyRequest(Self.base + "/x"))
        #expect(proxySummary(machine.resolved(port: 8000, upstream: nil)) == "problem 502, then next")
    }

    @Test func expectContinueIsAnsweredHereAndNotSentOn() {
        var machine = Machine(previewDomain: nil)
        let request = proxyRequest(Self.base + "/e", method: .POST, [("host", "x"), ("content-length", "5"), ("expect", "100-continue")])
        #expect(proxySummary(machine.requestPartReceived(request)) == "resolve \(Self.token) connect continue")
        guard case .sendRequest(let sent, _) = machine.resolved(port: 8000, upstream: Self.link(1)) else {
            Issue.record("sent")
            return
        }
        #expect(!sent.headers.contains(name: "expect"))
        #expect(proxySummary(machine.upstreamResponsePart(.head(.init(version: .http1_1, status: .continue)), from: Self.id(1))) == "none", "informational answers are not relayed")
    }

    /// A failure before `100 Continue` was given closes the connection (the client may or may not send its body);
    /// one after it does not (the body comes, and is dropped).
    @Test func aFailureClosesTheConnectionOnlyWhenNoContinueWasGiven() {
        let request = proxyRequest(Self.base + "/e", method: .POST, [("host", "x"), ("content-length", "5"), ("expect", "100-continue")])
        var before = Machine(previewDomain: nil)
        _ = before.requestPartReceived(request)
        #expect(proxySummary(before.resolutionFailed(AgentBoxError(.notFound, "no such preview"))) == "problem 404, then close")
        var after = Machine(previewDomain: nil)
        _ = after.requestPartReceived(request)
        #expect(proxySummary(after.resolutionFailed(AgentBoxError(.badGateway, "nothing listens"), continueSent: true)) == "problem 502, then next")
    }

    /// A preview request's body that does not parse fails its exchange: a 400, and the connection closes.
    @Test func aBodyThatDoesNotParseFailsItsExchange() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/up", method: .POST, [("host", "x"), ("transfer-encoding", "chunked")]))
        let failed = machine.requestBodyFailed(HTTPParserError.invalidChunkSize)
        #expect(failed.map(proxySummary) == "problem 400, then close, close upstream 1")
        var routes = Machine(previewDomain: nil)
        _ = routes.requestPartReceived(proxyRequest("/v1/workspaces/w/fs/file", method: .PUT))
        let notOurs = routes.requestBodyFailed(HTTPParserError.invalidChunkSize)
        #expect(notOurs == nil, "the routes answer their own")
    }

    // MARK: Pipelining

    @Test func aRouteRequestPipelinedBehindAPreviewWaitsForItsAnswer() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/one"))
        _ = machine.requestPartReceived(.end(nil))
        #expect(proxySummary(machine.requestPartReceived(proxyRequest("/v1/workspaces/a", method: .PUT))) == "none")
        #expect(proxySummary(machine.requestPartReceived(.body(ByteBuffer(string: "{}")))) == "none")
        #expect(machine.readRequested() == false, "reading pauses while a request waits")
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "none")
        #expect(Self.answer(&machine) == ["response 200", "response body 5", "end, then next"])
        #expect(Self.drain(&machine) == ["routes head PUT /v1/workspaces/a", "routes body 2", "routes end"])
        #expect(machine.resumeReading() == true, "the held read goes on once nothing waits")
    }

    @Test func aPreviewRequestPipelinedBehindRouteRequestsWaitsForTheirAnswers() {
        var machine = Machine(previewDomain: nil)
        _ = machine.requestPartReceived(proxyRequest("/v1/health"))
        _ = machine.requestPartReceived(.end(nil))
        _ = machine.requestPartReceived(proxyRequest("/v1/workspaces"))
        _ = machine.requestPartReceived(.end(nil))
        #expect(proxySummary(machine.requestPartReceived(proxyRequest(Self.base + "/p"))) == "none")
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "none")
        #expect(proxySummary(machine.requestPartReceived(proxyRequest("/v1/health"))) == "none", "behind the waiting preview, a route request waits too")
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "none")
        #expect(machine.readRequested() == false)
        #expect(proxySummary(machine.routeAnswerEnded()) == "none", "one of two answers")
        #expect(proxySummary(machine.routeAnswerEnded()) == "drain")
        #expect(Self.drain(&machine) == ["resolve \(Self.token) connect", "none"], "the preview goes on; the route request behind it waits")
        #expect(machine.resumeReading() == false)
        #expect(proxySummary(machine.resolved(port: 8000, upstream: Self.link(1))) == "send GET /p + end")
        #expect(machine.resumeReading() == false, "a request still waits")
        #expect(Self.answer(&machine) == ["response 200", "response body 5", "end, then next"])
        #expect(Self.drain(&machine) == ["routes head GET /v1/health", "routes end"])
        #expect(machine.resumeReading() == true)
    }

    @Test func pipelinedPreviewRequestsAreAnsweredOneAtATime() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/one"))
        _ = machine.requestPartReceived(.end(nil))
        #expect(proxySummary(machine.requestPartReceived(proxyRequest(Self.base + "/two"))) == "none")
        _ = machine.requestPartReceived(.end(nil))
        _ = Self.answer(&machine)
        #expect(Self.drain(&machine) == ["resolve \(Self.token) connect reuse 1", "none"])
        #expect(proxySummary(machine.resolved(port: 8000, upstream: Self.link(1))) == "send GET /two + end")
    }

    // MARK: Closing

    @Test func connectionCloseEndsTheConnectionAfterItsAnswerAndDropsWhatFollows() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/last", [("host", "x"), ("connection", "close")]))
        _ = machine.requestPartReceived(.end(nil))
        #expect(proxySummary(machine.requestPartReceived(proxyRequest("/v1/health"))) == "none")
        guard case .writeResponseHead(let answer) = machine.upstreamResponsePart(.head(.init(version: .http1_1, status: .ok)), from: Self.id(1)) else {
            Issue.record("relayed")
            return
        }
        #expect(answer.headers["connection"] == ["close"])
        #expect(proxySummary(machine.upstreamResponsePart(.end(nil), from: Self.id(1))) == "end, then close, close upstream 1")
        #expect(Self.drain(&machine).isEmpty, "what was pipelined after it is not answered")
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "none")
        #expect(!machine.readRequested() && !machine.resumeReading(), "nothing more is read")
        #expect(proxySummary(machine.channelInactive()) == "none")
    }

    @Test func whichRequestsCloseTheConnection() {
        let cases: [(HTTPVersion, [(String, String)], Bool)] = [
            (.http1_0, [("host", "x")], true), (.http1_0, [("host", "x"), ("connection", "keep-alive")], false),
            (.http1_1, [("host", "x"), ("connection", "Keep-Alive, Close")], true), (.http1_1, [("host", "x")], false),
        ]
        for (version, headers, closes) in cases {
            var machine = Machine(previewDomain: nil)
            _ = machine.requestPartReceived(proxyRequest(Self.base, version: version, headers))
            guard case .answer(.head(let redirect), let end) = machine.resolved(port: 8000, upstream: nil) else {
                Issue.record("answered here")
                continue
            }
            #expect(end.closesConnection == closes && (redirect.headers["connection"] == ["close"]) == closes, "\(version) \(headers)")
        }
    }

    @Test func theClientClosingMidBodyClosesTheConnectionIntoTheWorkspace() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/up", method: .POST, [("host", "x"), ("transfer-encoding", "chunked")]))
        #expect(proxySummary(machine.requestPartReceived(.body(ByteBuffer(string: "abc")))) == "upstream body 3")
        #expect(proxySummary(machine.channelInactive()) == "close upstream 1")
        #expect(proxySummary(machine.requestPartReceived(.body(ByteBuffer(string: "def")))) == "none")
        #expect(proxySummary(machine.upstreamResponsePart(.end(nil), from: Self.id(1))) == "none")
        #expect(proxySummary(machine.upstreamInactive(Self.id(1))) == "none")
        #expect(machine.upstreamIdle(Self.id(1)))
    }

    @Test func aConnectionMadeAfterTheClientLeftIsClosed() {
        var machine = Machine(previewDomain: nil)
        _ = machine.requestPartReceived(proxyRequest(Self.base + "/x"))
        #expect(proxySummary(machine.channelInactive()) == "none")
        #expect(proxySummary(machine.resolved(port: 8000, upstream: Self.link(7))) == "close upstream 7")
        #expect(proxySummary(machine.resolutionFailed(AgentBoxError(.notFound, "gone"))) == "none")
    }

    @Test func theWorkspacesServerClosingMidAnswerClosesTheClientsConnection() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/big"))
        _ = machine.requestPartReceived(.end(nil))
        _ = machine.requestPartReceived(proxyRequest("/v1/health"))
        #expect(proxySummary(machine.upstreamResponsePart(.head(.init(version: .http1_1, status: .ok)), from: Self.id(1))) == "response 200")
        #expect(proxySummary(machine.upstreamResponsePart(.body(ByteBuffer(string: "part")), from: Self.id(1))) == "response body 4")
        #expect(proxySummary(machine.upstreamInactive(Self.id(1))) == "close connection")
        #expect(Self.drain(&machine).isEmpty && !machine.readRequested())
    }

    @Test func aKeptAliveConnectionClosedAsTheRequestWentOutIsRetriedOnce() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/one"))
        _ = machine.requestPartReceived(.end(nil))
        _ = Self.answer(&machine)
        _ = machine.requestPartReceived(proxyRequest(Self.base + "/two"))
        _ = machine.resolved(port: 8000, upstream: Self.link(1))
        _ = machine.requestPartReceived(.end(nil))
        #expect(proxySummary(machine.upstreamInactive(Self.id(1))) == "resolve \(Self.token) connect", "sent again on a new connection")
        #expect(machine.readRequested() == false)
        #expect(proxySummary(machine.resolved(port: 8000, upstream: Self.link(2))) == "send GET /two + end")
        #expect(proxySummary(machine.upstreamInactive(Self.id(2))) == "problem 502, then next", "once only")
    }

    @Test func aRequestWhoseBodyHasNotEndedIsNotRetried() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/up", method: .POST, [("host", "x"), ("content-length", "3")]))
        #expect(proxySummary(machine.upstreamInactive(Self.id(1))) == "problem 502, then next")
        #expect(proxySummary(machine.requestPartReceived(.body(ByteBuffer(string: "abc")))) == "none", "the rest of the request is dropped")
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "none")
    }

    @Test func anEarlyAnswerEndsTheExchangeAndTheRestOfTheBodyIsDropped() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/up", method: .POST, [("host", "x"), ("content-length", "6")]))
        _ = machine.requestPartReceived(.body(ByteBuffer(string: "abc")))
        // The connection into the workspace goes: "abc" may sit unread there, and would be read as the next request.
        #expect(Self.answer(&machine, body: "no") == ["response 200", "response body 2", "end, then next, close upstream 1"])
        #expect(proxySummary(machine.requestPartReceived(.body(ByteBuffer(string: "def")))) == "none")
        #expect(proxySummary(machine.requestPartReceived(.end(nil))) == "none")
        #expect(proxySummary(machine.requestPartReceived(proxyRequest(Self.base + "/next"))) == "resolve \(Self.token) connect")
    }

    // MARK: Backpressure and idleness

    @Test func readingPausesWhileTheWorkspacesServerTakesNoMore() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/up", method: .POST, [("host", "x"), ("content-length", "9")]))
        #expect(machine.readRequested() == true)
        #expect(machine.upstreamWritabilityChanged(Self.id(1), isWritable: false) == false)
        #expect(machine.readRequested() == false, "held")
        #expect(machine.upstreamWritabilityChanged(Self.id(9), isWritable: true) == false, "another connection's writability says nothing")
        #expect(machine.upstreamWritabilityChanged(Self.id(1), isWritable: true) == true, "the held read goes on")
        #expect(machine.readRequested() == true)
        // Between requests a full connection holds nothing back.
        _ = machine.requestPartReceived(.body(ByteBuffer(string: "123456789")))
        _ = machine.requestPartReceived(.end(nil))
        _ = Self.answer(&machine)
        #expect(machine.upstreamWritabilityChanged(Self.id(1), isWritable: false) == false)
        #expect(machine.readRequested() == true)
    }

    @Test func anIdleConnectionClosesUnlessAnAnswerIsUnderWayOnIt() {
        var machine = Machine(previewDomain: nil)
        _ = Self.startPreview(&machine, proxyRequest(Self.base + "/slow"))
        #expect(!machine.upstreamIdle(Self.id(1)))
        #expect(machine.upstreamIdle(Self.id(2)))
        _ = machine.requestPartReceived(.end(nil))
        _ = Self.answer(&machine)
        #expect(machine.upstreamIdle(Self.id(1)))
        #expect(proxySummary(machine.upstreamInactive(Self.id(1))) == "none")
        #expect(proxySummary(machine.requestPartReceived(proxyRequest(Self.base + "/again"))) == "resolve \(Self.token) connect", "nothing to reuse")
    }

    // MARK: Upgrades

    @Test func aWebSocketUpgradeGoesToTheRoutesAndAForeignOneIsAPlainRequest() {
        var machine = Machine(previewDomain: nil)
        let webSocket = proxyRequest(Self.base + "/hmr", [("host", "x"), ("upgrade", "websocket"), ("connection", "Upgrade")])
        #expect(proxySummary(machine.requestPartReceived(webSocket)) == "routes head GET \(Self.base)/hmr")
        _ = machine.requestPartReceived(.end(nil))
        _ = machine.routeAnswerEnded()
        let h2c = proxyRequest(Self.base + "/h2", [("host", "x"), ("upgrade", "h2c"), ("connection", "Upgrade, HTTP2-Settings")])
        #expect(proxySummary(machine.requestPartReceived(h2c)) == "resolve \(Self.token) connect")
        guard case .sendRequest(let sent, _) = machine.resolved(port: 8000, upstream: Self.link(1)) else {
            Issue.record("sent")
            return
        }
        #expect(!sent.headers.contains(name: "upgrade") && !sent.headers.contains(name: "connection"))
        _ = machine.requestPartReceived(.end(nil))
        _ = machine.upstreamResponsePart(.head(.init(version: .http1_1, status: .ok)), from: Self.id(1))
        #expect(proxySummary(machine.upstreamResponsePart(.end(nil), from: Self.id(1))) == "end, then close, close upstream 1", "NIO reads nothing more after `Connection: Upgrade`")
    }

    @Test func withWebSocketRelayingAnUpgradeIsAnExchangeAndA101HandsTheConnectionToTheRelay() {
        var machine = Machine(previewDomain: nil, relaysWebSockets: true)
        let webSocket = proxyRequest(
            Self.base + "/hmr?x=1",
            [("host", "x"), ("upgrade", "websocket"), ("connection", "keep-alive, Upgrade"), ("sec-websocket-key", "k"), ("sec-websocket-protocol", "vite-hmr"),
             ("x-agentbox-preview-websocket", "spoofed"), ("cookie", "a=1")])
        #expect(proxySummary(machine.requestPartReceived(webSocket)) == "resolve \(Self.token) connect")
        guard case .sendRequest(let sent, _) = machine.resolved(port: 8000, upstream: Self.link(1)) else {
            Issue.record("sent")
            return
        }
        #expect(sent.uri == "/hmr?x=1")
        #expect(sent.headers["upgrade"] == ["websocket"] && sent.headers["connection"] == ["upgrade"], "said again for this hop, once")
        #expect(sent.headers["sec-websocket-key"] == ["k"] && sent.headers["sec-websocket-protocol"] == ["vite-hmr"] && sent.headers["cookie"] == ["a=1"])
        #expect(!sent.headers.contains(name: "x-agentbox-preview-websocket") && !sent.headers.contains(name: "keep-alive"))
        #expect(sent.headers["host"] == ["localhost:8000"])
        _ = machine.requestPartReceived(.end(nil))
        // A hostile server's 100 first, then the 101.
        #expect(proxySummary(machine.upstreamResponsePart(.head(.init(version: .http1_1, status: .continue)), from: Self.id(1))) == "none")
        let switching = HTTPResponseHead(
            version: .http1_1, status: .switchingProtocols,
            headers: ["upgrade": "websocket", "connection": "Upgrade", "sec-websocket-accept": "a", "sec-websocket-protocol": "vite-hmr", "keep-alive": "x"])
        let action = machine.upstreamResponsePart(.head(switching), from: Self.id(1))
        #expect(proxySummary(action) == "relay websocket 101 on upstream 1")
        if case .relayWebSocket(let head, _) = action {
            #expect(head.headers["upgrade"] == ["websocket"] && head.headers["connection"] == ["upgrade"], "\(head.headers)")
            #expect(head.headers["sec-websocket-accept"] == ["a"] && head.headers["sec-websocket-protocol"] == ["vite-hmr"])
            #expect(!head.headers.contains(name: "keep-alive"))
        }
        // The connection is the relay's: what the parsers still hand on is ignored, nothing is read or answered.
        #expect(proxySummary(machine.upstreamResponsePart(.end(nil), from: Self.id(1))) == "none")
        #expect(proxySummary(machine.requestPartReceived(proxyRequest("/v1/health"))) == "none")
        #expect(proxySummary(machine.upstreamInactive(Self.id(1))) == "none", "the machine no longer owns that connection")
        #expect(proxySummary(machine.channelInactive()) == "none", "so it does not close it either")
    }

    @Test func aRefusedWebSocketUpgradeIsAnsweredThenTheConnectionCloses() {
        var machine = Machine(previewDomain: nil, relaysWebSockets: true)
        // The marker stands for `Upgrade: websocket` (UpgradeRequestFilter's, on a connection's first request).
        let marked = proxyRequest(Self.base + "/ws", [("host", "x"), ("x-agentbox-preview-websocket", "websocket"), ("connection", "Upgrade")])
        #expect(Self.startPreview(&machine, marked) == ["resolve \(Self.token) connect", "send GET /ws"])
        _ = machine.requestPartReceived(.end(nil))
        #expect(proxySummary(machine.upstreamResponsePart(.head(.init(version: .http1_1, status: .notFound)), from: Self.id(1))) == "response 404")
        #expect(proxySummary(machine.upstreamResponsePart(.end(nil), from: Self.id(1))) == "end, then close, close upstream 1")
        // A 101 to a plain request is not a WebSocket, and that connection is no longer HTTP: a 502, and it closes.
        var plain = Machine(previewDomain: nil, relaysWebSockets: true)
        _ = Self.startPreview(&plain, proxyRequest(Self.base + "/x"))
        #expect(
            proxySummary(plain.upstreamResponsePart(.head(.init(version: .http1_1, status: .switchingProtocols)), from: Self.id(1)))
                == "problem 502, then next, close upstream 1")
        #expect(proxySummary(plain.upstreamResponsePart(.end(nil), from: Self.id(1))) == "none", "what the closed connection still hands on")
        // An informational answer's end ends nothing: the final answer follows.
        var informed = Machine(previewDomain: nil, relaysWebSockets: true)
        _ = Self.startPreview(&informed, proxyRequest(Self.base + "/x"))
        #expect(proxySummary(informed.upstreamResponsePart(.head(.init(version: .http1_1, status: .init(statusCode: 103))), from: Self.id(1))) == "none")
        #expect(proxySummary(informed.upstreamResponsePart(.end(nil), from: Self.id(1))) == "none")
        #expect(proxySummary(informed.upstreamResponsePart(.head(.init(version: .http1_1, status: .ok)), from: Self.id(1))) == "response 200")
        // An upgrade to anything else, and a WebSocket upgrade that is not a GET, stay plain requests.
        var foreign = Machine(previewDomain: nil, relaysWebSockets: true)
        let h2c = proxyRequest(Self.base + "/h2", [("host", "x"), ("upgrade", "h2c"), ("connection", "Upgrade")])
        #expect(proxySummary(foreign.requestPartReceived(h2c)) == "resolve \(Self.token) connect")
        guard case .sendRequest(let sent, _) = foreign.resolved(port: 8000, upstream: Self.link(1)) else {
            Issue.record("sent")
            return
        }
        #expect(!sent.headers.contains(name: "upgrade") && !sent.headers.contains(name: "connection"))
        let post = HTTPRequestHead(version: .http1_1, method: .POST, uri: Self.base + "/ws", headers: ["host": "x", "upgrade": "websocket", "connection": "Upgrade"])
        #expect(!PreviewRequestHead.isWebSocketUpgrade(post))
        #expect(PreviewRequestHead.target(of: post, previewDomain: nil, webSockets: true) == nil, "goes to the routes, as before")
        let noConnection = HTTPRequestHead(version: .http1_1, method: .GET, uri: Self.base + "/ws", headers: ["host": "x", "upgrade": "websocket"])
        #expect(!PreviewRequestHead.isWebSocketUpgrade(noConnection))
        // The API's own WebSocket routes are never a preview, relayed or not.
        let shell = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: "/v1/workspaces/w/shells/s/ws", headers: ["host": "x", "upgrade": "websocket", "connection": "Upgrade"])
        #expect(PreviewRequestHead.target(of: shell, previewDomain: nil, webSockets: true) == nil)
        let hostShell = HTTPRequestHead(
            version: .http1_1, method: .GET, uri: "/v1/workspaces/w/shells/s/ws",
            headers: ["host": "\(Self.token).p.example", "upgrade": "websocket", "connection": "Upgrade"])
        #expect(PreviewRequestHead.target(of: hostShell, previewDomain: "p.example", webSockets: true)?.target == "/v1/workspaces/w/shells/s/ws", "a preview host's path is the preview's")
    }

    @Test func aForeignUpgradeWaitingBehindARouteRequestKeepsItsPlace() {
        var machine = Machine(previewDomain: nil)
        _ = machine.requestPartReceived(proxyRequest("/v1/health"))
        _ = machine.requestPartReceived(.end(nil))
        _ = machine.requestPartReceived(proxyRequest(Self.base + "/h2", [("host", "x"), ("upgrade", "h2c")]))
        _ = machine.requestPartReceived(.end(nil))
        _ = machine.requestPartReceived(proxyRequest("/v1/workspaces"))
        _ = machine.requestPartReceived(.end(nil))
        #expect(Self.drain(&machine).isEmpty, "the preview waits for the route's answer")
        #expect(proxySummary(machine.routeAnswerEnded()) == "drain")
        #expect(Self.drain(&machine) == ["resolve \(Self.token) connect", "none"])
    }
}

// MARK: - Helpers

func proxyRequest(_ uri: String, method: HTTPMethod = .GET, version: HTTPVersion = .http1_1, _ headers: [(String, String)] = [("host", "x")]) -> HTTPServerRequestPart {
    .head(HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers)))
}

/// An action in a few words, so that tests compare sequences of them.
func proxySummary(_ action: PreviewProxyStateMachine.Action) -> String {
    switch action {
    case .none: return "none"
    case .forwardToRoutes(let part): return "routes " + proxySummary(part)
    case .resolve(let resolution):
        return "resolve \(resolution.token)" + (resolution.connects ? " connect" : "") + (resolution.reusable.map { " reuse \($0.rawValue)" } ?? "")
            + (resolution.sendsContinue ? " continue" : "")
    case .sendRequest(let head, let pending): return "send \(head.method) \(head.uri)" + pending.map { " + " + proxySummary($0) }.joined()
    case .forwardToUpstream(let part): return "upstream " + proxySummary(part)
    case .writeResponseHead(let head): return "response \(head.status.code)"
    case .writeResponseBody(let buffer): return "response body \(buffer.readableBytes)"
    case .endResponse(let end): return "end" + proxySummary(end)
    case .answer(.head(let head), let end): return "answer \(head.status.code)" + proxySummary(end)
    case .answer(.problem(let error), let end): return "problem \(ProblemError.from(error, logger: Logger(label: "test")).status.code)" + proxySummary(end)
    case .drain: return "drain"
    case .closeUpstream(let id): return "close upstream \(id.rawValue)"
    case .closeConnection(let id): return "close connection" + (id.map { " and upstream \($0.rawValue)" } ?? "")
    case .relayWebSocket(let head, let id): return "relay websocket \(head.status.code) on upstream \(id.rawValue)"
    }
}

func proxySummary(_ end: PreviewProxyStateMachine.AnswerEnd) -> String {
    (end.closesConnection ? ", then close" : ", then next") + (end.closeUpstream.map { ", close upstream \($0.rawValue)" } ?? "")
}

func proxySummary(_ part: HTTPServerRequestPart) -> String {
    switch part {
    case .head(let head): return "head \(head.method) \(head.uri)"
    case .body(let buffer): return "body \(buffer.readableBytes)"
    case .end: return "end"
    }
}
