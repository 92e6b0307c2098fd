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
