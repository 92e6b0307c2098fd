import NIOCore
import NIOEmbedded
import Testing

@testable import AgentBox

/// The egress proxy's answers to plain-HTTP requests say `Connection: close`, however the bytes arrive.
@Suite struct ResponseCloseMarkerTests {
    /// Feeds `chunks` through a marker and returns what came out.
    func mark(_ chunks: [String]) throws -> (String, Void) {
        let channel = EmbeddedChannel(handler: ResponseCloseMarker())
        for chunk in chunks {
            try channel.writeInbound(ByteBuffer(string: chunk))
        }
        var out = ""
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { out += String(buffer: buffer) }
        _ = try? channel.finish()
        return (out, ())
    }

    @Test func aFinalAnswerIsMarked() throws {
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        #expect(try mark([answer]).0 == "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
    }

    @Test func aStatusLineSplitAcrossReadsIsMarkedOnce() throws {
        let chunks = ["HT", "TP/1.1 4", "00 Bad Request\r", "\nContent-Length: 0\r\n\r\n", "HTTP/1.1 200 OK\r\n"]
        // What follows the first answer is passed as it came (the target closes after one answer).
        #expect(try mark(chunks).0 == "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n")
    }

    @Test func interimAnswersPassAndTheFinalOneIsMarked() throws {
        let chunks = ["HTTP/1.1 100 Continue\r\nX-A: 1\r", "\n\r", "\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"]
        #expect(
            try mark(chunks).0
                == "HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    }

    /// The target's own connection fields (with their continuation lines) go; other fields and the body stay.
    @Test func theTargetsConnectionFieldsAreDropped() throws {
        let answer = "HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5\r\nX-A: 1\r\nconnection: keep-alive,\r\n\tfoo\r\nPROXY-CONNECTION: keep-alive\r\nX-Connection: kept\r\n\r\nconnection: body"
        #expect(try mark([answer]).0 == "HTTP/1.0 200 OK\r\nConnection: close\r\nX-A: 1\r\nX-Connection: kept\r\n\r\nconnection: body")
        // Split at every byte, the same.
        let bytes = Array(answer.utf8)
        for split in 1..<bytes.count {
            let parts = [String(decoding: bytes[..<split], as: UTF8.self), String(decoding: bytes[split...], as: UTF8.self)]
            #expect(try mark(parts).0 == "HTTP/1.0 200 OK\r\nConnection: close\r\nX-A: 1\r\nX-Connection: kept\r\n\r\nconnection: body")
        }
    }

    /// An answer cut inside a line is passed on as it came when the target's side ends.
    @Test func heldBytesGoOnWhenTheTargetCloses() throws {
        let channel = EmbeddedChannel(handler: ResponseCloseMarker())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nX-Cut: ha"))
        _ = try? channel.close().wait()
        var out = ""
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { out += String(buffer: buffer) }
        #expect(out == "HTTP/1.1 200 OK\r\nConnection: close\r\nX-Cut: ha")
    }

    @Test func switchingProtocolsAndNonHTTPPassUntouched() throws {
        let upgrade = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{1}HTTP/1.1 200 OK\r\n"
        #expect(try mark([upgrade]).0 == upgrade)
        #expect(try mark(["SSH-2.0-x\r\nHTTP/1.1 200 OK\r\n"]).0 == "SSH-2.0-x\r\nHTTP/1.1 200 OK\r\n")
        #expect(try mark(["HTTP/1.1 2x0 OK\r\n\r\n"]).0 == "HTTP/1.1 2x0 OK\r\n\r\n")
    }

    @Test func aLineWithoutAnEndClosesTheConnection() throws {
        let channel = EmbeddedChannel(handler: ResponseCloseMarker())
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 80)).wait()
        #expect(channel.isActive)
        #expect(throws: ResponseCloseMarkerError.self) {
            try channel.writeInbound(ByteBuffer(string: String(repeating: "H", count: ResponseCloseMarker.maxLine + 1)))
        }
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        #expect(!channel.isActive)
    }
}
