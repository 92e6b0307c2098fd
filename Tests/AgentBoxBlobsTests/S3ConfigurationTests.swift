import AgentBoxBlobs
import Foundation
import Testing

@Suite struct S3ConfigurationTests {
    @Test func parsesTheURLForm() throws {
        let config = try S3Configuration(url: "s3://AKID:se%2Fcr%2Bet@127.0.0.1:8333/checkpoints?region=eu-west-1")
        #expect(config.endpoint.absoluteString == "http://127.0.0.1:8333")
        #expect(config.bucket == "checkpoints")
        #expect(config.region == "eu-west-1")
        #expect(config.accessKey == "AKID")
        #expect(config.secretKey == "se/cr+et")
        #expect(config.hostHeader == "127.0.0.1:8333")
        #expect(!config.description.contains("se/cr+et"))
    }

    @Test func chosenScheme() throws {
        #expect(try S3Configuration(url: "s3://a:b@s3.example.com/bucket").endpoint.absoluteString == "https://s3.example.com")
        #expect(try S3Configuration(url: "s3://a:b@s3.example.com/bucket").region == "us-east-1")
        #expect(try S3Configuration(url: "s3://a:b@localhost:9000/bucket").endpoint.scheme == "http")
        #expect(try S3Configuration(url: "s3://a:b@minio:9000/bucket?scheme=http").endpoint.absoluteString == "http://minio:9000")
        #expect(try S3Configuration(url: "s3://a:b@127.0.0.1/bucket?scheme=https").endpoint.scheme == "https")
        #expect(try S3Configuration(url: "https://a:b@127.0.0.1:9000/bucket").endpoint.scheme == "https")
        #expect(try S3Configuration(url: "https://a:b@example.com:443/bucket").hostHeader == "example.com")
    }

    @Test(arguments: [
        "s3://127.0.0.1:8333/bucket",  // no credentials
        "s3://a:b@127.0.0.1:8333/",  // no bucket
        "s3://a:b@127.0.0.1:8333/a/b",  // a path in the bucket
        "s3://a:b@127.0.0.1:8333/Bad_Bucket",
        "s3://a:b@127.0.0.1:8333/bucket?scheme=ftp",
        "s3://a:b@127.0.0.1:8333/bucket?colour=blue",
        "ftp://a:b@127.0.0.1/bucket",
    ])
    func refusesMalformed(_ url: String) {
        #expect(throws: BlobError.self) { try S3Configuration(url: url) }
    }
}
