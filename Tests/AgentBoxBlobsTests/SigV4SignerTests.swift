import Foundation
import Testing

@testable import AgentBoxBlobs

/// The signer against AWS's published examples: the Signature Version 4 test suite (service `service`, credentials
/// `AKIDEXAMPLE`, 2015-08-30T12:36:00Z), the S3 API reference's four header-signing examples, and one request with a
/// key of spaces, `+`, `=` and non-ASCII letters checked against another implementation (botocore 1.44's
/// S3SigV4Auth, run once by hand).
@Suite struct SigV4SignerTests {
    static let suiteSigner = SigV4Signer(
        accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "service")
    static let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

    struct SuiteCase: Sendable, CustomTestStringConvertible {
        var name: String
        var method = "GET"
        var path = "/"
        var query: [Pair] = []
        var headers: [Pair] = []
        var body = ""
        var signedHeaders = "host;x-amz-date"
        var signature: String
        var testDescription: String { name }
    }

    struct Pair: Sendable {
        var name: String
        var value: String
        init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    static let suiteCases: [SuiteCase] = [
        SuiteCase(name: "get-vanilla", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        SuiteCase(
            name: "get-unreserved", path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
        SuiteCase(
            name: "get-vanilla-query-order-key-case", query: [Pair("Param2", "value2"), Pair("Param1", "value1")],
            signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        SuiteCase(
            name: "get-vanilla-query-order-value", query: [Pair("Param1", "value2"), Pair("Param1", "value1")],
            signature: "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
        SuiteCase(
            name: "get-vanilla-utf8-query", query: [Pair("\u{1234}", "bar")],
            signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        SuiteCase(
            name: "get-header-value-trim", headers: [Pair("My-Header1", " value1"), Pair("My-Header2", "\"a   b   c\"")],
            signedHeaders: "host;my-header1;my-header2;x-amz-date",
            signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
        SuiteCase(
            name: "get-header-key-duplicate",
            headers: [Pair("My-Header1", "value2"), Pair("My-Header1", "value2"), Pair("My-Header1", "value1")],
            signedHeaders: "host;my-header1;x-amz-date",
            signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"),
        SuiteCase(
            name: "get-header-value-order",
            headers: [
                Pair("My-Header1", "value4"), Pair("My-Header1", "value1"), Pair("My-Header1", "value3"), Pair("My-Header1", "value2"),
            ],
            signedHeaders: "host;my-header1;x-amz-date",
            signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"),
        SuiteCase(
            name: "post-x-www-form-urlencoded", method: "POST",
            headers: [Pair("Content-Type", "application/x-www-form-urlencoded")], body: "Param1=value1",
            signedHeaders: "content-type;host;x-amz-date",
            signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    ]

    @Test(arguments: suiteCases)
    func signatureTestSuite(_ test: SuiteCase) {
        let headers = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")] + test.headers.map { ($0.name, $0.value) }
        let authorization = Self.suiteSigner.authorization(
            method: test.method, path: test.path, query: test.query.map { ($0.name, $0.value) }, headers: headers,
            payloadHash: sha256Hex(Data(test.body.utf8)), date: Self.suiteDate)
        #expect(
            authorization
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=\(test.signedHeaders), Signature=\(test.signature)"
        )
    }

    @Test func getVanillaStepByStep() {
        let canonical = Self.suiteSigner.canonicalRequest(
            method: "GET", path: "/", query: [], headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(
            canonical
                == "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        #expect(
            Self.suiteSigner.stringToSign(canonicalRequest: canonical, date: Self.suiteDate)
                == "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        )
    }

    @Test func suitePathsAndQueries() {
        #expect(SigV4Signer.canonicalURI("/example space/") == "/example%20space/")
        #expect(SigV4Signer.canonicalURI("/\u{1234}") == "/%E1%88%B4")
        #expect(SigV4Signer.canonicalURI("") == "/")
        #expect(SigV4Signer.canonicalQuery([("Param2", "value2"), ("Param1", "value1")]) == "Param1=value1&Param2=value2")
        #expect(SigV4Signer.canonicalQuery([("q", "a+b c/d"), ("delete", "")]) == "delete=&q=a%2Bb%20c%2Fd")
    }

    // MARK: The S3 API reference's examples (AKIAIOSFODNN7EXAMPLE, examplebucket, 2013-05-24)

    static let s3Signer = SigV4Signer(
        accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", region: "us-east-1", service: "s3")
    static let s3Date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
    static let s3Headers = [
        ("host", "examplebucket.s3.amazonaws.com"), ("x-amz-content-sha256", SigV4Signer.emptyPayloadHash),
        ("x-amz-date", "20130524T000000Z"),
    ]

    @Test func s3GetObject() {
        let headers = Self.s3Headers + [("Range", "bytes=0-9")]
        let canonical = Self.s3Signer.canonicalRequest(
            method: "GET", path: "/test.txt", query: [], headers: headers, payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(
            canonical
                == "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
        let toSign = Self.s3Signer.stringToSign(canonicalRequest: canonical, date: Self.s3Date)
        #expect(
            toSign
                == "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        )
        #expect(
            Self.s3Signer.signature(stringToSign: toSign, date: Self.s3Date) == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test func s3PutObject() {
        let payload = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        #expect(sha256Hex(Data("Welcome to Amazon S3.".utf8)) == payload)
        let headers = [
            ("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"), ("x-amz-content-sha256", payload),
        ]
        let authorization = Self.s3Signer.authorization(
            method: "PUT", path: "/test$file.text", query: [], headers: headers, payloadHash: payload, date: Self.s3Date)
        #expect(authorization.hasSuffix("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"))
        #expect(
            Self.s3Signer.canonicalRequest(method: "PUT", path: "/test$file.text", query: [], headers: headers, payloadHash: payload)
                .hasPrefix("PUT\n/test%24file.text\n\n"))
    }

    @Test func s3GetBucketLifecycle() {
        let authorization = Self.s3Signer.authorization(
            method: "GET", path: "/", query: [("lifecycle", "")], headers: Self.s3Headers, payloadHash: SigV4Signer.emptyPayloadHash,
            date: Self.s3Date)
        #expect(authorization.hasSuffix("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"))
    }

    @Test func s3ListObjects() {
        let authorization = Self.s3Signer.authorization(
            method: "GET", path: "/", query: [("prefix", "J"), ("max-keys", "2")], headers: Self.s3Headers,
            payloadHash: SigV4Signer.emptyPayloadHash, date: Self.s3Date)
        #expect(
            authorization
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        )
    }

    /// A path-style PUT of a key with a space, `+`, `=`, `é` and `✓`, and a query with a space and a `+`: the
    /// signature botocore computes for the same request.
    @Test func keyWithSpecialCharactersMatchesAnotherImplementation() {
        let signer = SigV4Signer(accessKey: "AGENTBOXTEST", secretKey: "s3cr3t/with+plus=", region: "us-east-1")
        let date = Date(timeIntervalSince1970: 1_796_354_103)  // 2026-12-04T03:15:03Z
        #expect(SigV4Signer.amzDate(date) == "20261204T031503Z")
        let payload = sha256Hex(Data("hello".utf8))
        let path = "/agentbox/workspaces/w 1/café +=✓.txt"
        #expect(SigV4Signer.canonicalURI(path) == "/agentbox/workspaces/w%201/caf%C3%A9%20%2B%3D%E2%9C%93.txt")
        let authorization = signer.authorization(
            method: "PUT", path: path, query: [("list-type", "2"), ("prefix", "a b+c")],
            headers: [("host", "127.0.0.1:8333"), ("x-amz-content-sha256", payload), ("x-amz-date", "20261204T031503Z")],
            payloadHash: payload, date: date)
        #expect(
            authorization
                == "AWS4-HMAC-SHA256 Credential=AGENTBOXTEST/20261204/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=326d4b0c2b9202c50e8041f5cbbdb76f8477d8db0deda8f4fda7de8d7fe4e5bb"
        )
    }
}
