import HTTPTypes
import NIOHTTP1
import Testing

@testable import AgentBoxServer

@Suite("Preview header rules")
struct PreviewProxyTests {
    @Test func answersLoseConnectionHeadersAndGainCORS() {
        let headers: HTTPHeaders = [
            "Content-Type": "text/plain", "CONNECTION": "keep-alive, X-Hop ,\tX-Other", "Keep-Alive": "timeout=5",
            "x-hop": "1", "X-OTHER": "2", "Transfer-Encoding": "chunked", "Content-Length": "6", "Set-Cookie": "a=1",
            "Location": "http://localhost:3000/next?x=1", "Upgrade": "h2c", "Proxy-Authenticate": "Basic",
        ]
        let result = PreviewProxy.responseHeaders(headers, port: 3000, prefix: "/preview/t")
        #expect(result.map(\.name) == [
            "Content-Type", "Content-Length", "Set-Cookie", "Location", "access-control-allow-origin", "access-control-expose-headers",
        ])
        #expect(result.first { $0.name == "Location" }?.value == "/preview/t/next?x=1")
        #expect(result.first { $0.name == "Content-Length" }?.value == "6")
    }

    @Test func aServersOwnCORSIsKept() {
        let result = PreviewProxy.responseHeaders(["Access-Control-Allow-Origin": "https://app.example"], port: 80, prefix: "")
        #expect(result.map(\.name) == ["Access-Control-Allow-Origin"] && result.first?.value == "https://app.example")
    }

    /// A workspace's cookies stay with its preview: no `Domain` (one preview host cannot set them for another), and
    /// under a path preview (which shares the API's origin) a `Path` under the preview's prefix.
    @Test func cookiesAreKeptToTheirPreview() {
        let cookies = [
            "a=1; Path=/; HttpOnly", "b=2; Domain=.example.com; path=/v1;Secure", "c=3", "d=4; Max-Age=60", "e=5;  DOMAIN = x ; Path",
            "f=6; Path=/preview/t/app",
        ]
        let headers = HTTPHeaders(cookies.map { ("Set-Cookie", $0) })
        let byPath = PreviewProxy.responseHeaders(headers, port: 80, prefix: "/preview/t").filter { $0.name == "Set-Cookie" }.map(\.value)
        #expect(
            byPath == [
                "a=1; Path=/preview/t/; HttpOnly", "b=2; Path=/preview/t/v1;Secure", "c=3", "d=4; Max-Age=60", "e=5; Path=/preview/t/",
                "f=6; Path=/preview/t/app",
            ])
        let byHost = PreviewProxy.responseHeaders(headers, port: 80, prefix: "").filter { $0.name == "Set-Cookie" }.map(\.value)
        #expect(byHost == ["a=1; Path=/; HttpOnly", "b=2; path=/v1;Secure", "c=3", "d=4; Max-Age=60", "e=5; Path", "f=6; Path=/preview/t/app"])
    }

    /// The client's AgentBox credentials stay out of the workspace; its app's own `Authorization` goes on.
    @Test func agentBoxCredentialsAreNotSentIntoTheWorkspace() {
        let target = PreviewTarget(token: "t", target: "/headers", prefix: "/preview/t")
        func forwarded(_ authorization: String) -> [String] {
            let request = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/preview/t/headers", headers: ["Authorization": authorization])
            return PreviewExchange(target, request: request).upstreamHead(port: 80, serverToken: "sekrit")
                .headers["authorization"]
        }
        #expect(forwarded("Bearer sekrit") == [])
        #expect(forwarded("bearer  sekrit ") == [])
        #expect(forwarded("Bearer abx_0123456789") == [])
        #expect(forwarded("Bearer\tsekrit") == [])
        #expect(forwarded("abx_0123456789") == [])
        #expect(forwarded("e2b_sekrit") == [])
        #expect(forwarded("Bearer sekrit2") == ["Bearer sekrit2"])
        #expect(forwarded("Basic dXNlcjpwdw==") == ["Basic dXNlcjpwdw=="])
        #expect(forwarded("Bearer app-token") == ["Bearer app-token"])
    }

    @Test func theClientsAddressIsAppendedToXForwardedFor() {
        let target = PreviewTarget(token: "t", target: "/", prefix: "/preview/t")
        let sent = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/preview/t/", headers: ["X-Forwarded-For": "10.0.0.9"])
        #expect(PreviewExchange(target, request: sent).upstreamHead(port: 80, clientAddress: "127.0.0.1").headers["x-forwarded-for"] == ["10.0.0.9, 127.0.0.1"])
        let plain = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/preview/t/")
        #expect(PreviewExchange(target, request: plain).upstreamHead(port: 80, clientAddress: "::1").headers["x-forwarded-for"] == ["::1"])
    }

    @Test func aHeadWithTwoHostsOrAnUnknownCodingIsRefused() {
        #expect(ClientTimeoutHandler.framingProblem(["Host": "a", "HOST": "b"])?.status == .badRequest)
        #expect(ClientTimeoutHandler.framingProblem(["Host": "a", "Transfer-Encoding": "gzip, chunked"])?.status == .notImplemented)
        #expect(ClientTimeoutHandler.framingProblem(["Host": "a", "Transfer-Encoding": " Chunked "]) == nil)
        #expect(ClientTimeoutHandler.framingProblem(["Host": "a", "Content-Length": "3"]) == nil)
        #expect(ClientTimeoutHandler.framingProblem(["Host": "a", "Transfer-Encoding": "chunked, chunked"])?.status == .badRequest)
        #expect(ClientTimeoutHandler.framingProblem(["Host": "a", "Transfer-Encoding": "chunked", "transfer-encoding": "chunked"])?.status == .badRequest)
    }

    @Test func namesCompareByASCIICaseOnly() {
        #expect(PreviewProxy.equalsLowercase("Content-LENGTH", "content-length"))
        #expect(!PreviewProxy.equalsLowercase("content-lengthx", "content-length"))
        #expect(!PreviewProxy.equalsLowercase("content\rlength", "content-length"))
        #expect(!PreviewProxy.equalsLowercase("CONTENT_LENGTH", "content-length"))
        #expect(PreviewProxy.listedInConnection([" Keep-Alive ,, X-A", "close"]) == ["keep-alive", "x-a", "close"])
        #expect(PreviewProxy.relocate("/a", port: 1, prefix: "/p") == "/p/a")
        #expect(PreviewProxy.relocate("//evil.example/a", port: 1, prefix: "/p") == "//evil.example/a")
        #expect(PreviewProxy.relocate("http://127.0.0.1:1?q", port: 1, prefix: "/p") == "/p/?q")
        #expect(PreviewProxy.relocate("http://localhost:10/a", port: 1, prefix: "/p") == "http://localhost:10/a")
    }
}
