import AgentBoxAPI
import AgentBoxClient
import AgentBoxSandbox
import AsyncHTTPClient
import ChildProcessSupport
import Foundation
import NIOCore
import Testing

@Suite("Files through the real binary", .timeLimit(.minutes(5)))
struct FileEndToEndTests {
    @Test func anAnsweredWriteSurvivesKillNine() async throws {
        try await withTemporaryDirectory { data in
            let first = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--sandbox", canSandbox ? "linux" : "unsandboxed"])
            var client = AgentBoxClient(endpoint: first.endpoint, token: first.token)
            _ = try await client.putWorkspace("durable")
            var expected: [String: Data] = [:]
            for index in 0..<20 {
                let content = Data((0..<(index * 1000)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) })
                _ = try await client.writeFile("durable", path: "/workspace/f\(index).bin", data: content)
                expected["/workspace/f\(index).bin"] = content
            }
            await first.stop(signal: SIGKILL)
            let second = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--sandbox", canSandbox ? "linux" : "unsandboxed"])
            client = AgentBoxClient(endpoint: second.endpoint, token: second.token)
            for (path, content) in expected {
                #expect(try await client.readFileData("durable", path: path) == content, "\(path)")
            }
            #expect(try await client.workspace("durable").state == .sleeping, "reading did not boot it")
            await second.stop()
        }
    }

    /// A client that sends `Expect: 100-continue` (curl does, for bodies over 1 MiB) gets `100 Continue` before it
    /// sends the body, and then the real answer; it does not have to wait out its own timeout.
    @Test func expectContinueIsAnswered() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--sandbox", canSandbox ? "linux" : "unsandboxed"])
            _ = try await AgentBoxClient(endpoint: server.endpoint, token: server.token).putWorkspace("expect")
            let socket = try RawSocket(port: server.endpoint.port!)
            try socket.send(
                "PUT /v1/workspaces/expect/fs/file?path=/workspace/e.txt HTTP/1.1\r\nHost: localhost\r\n"
                    + "Authorization: Bearer \(server.token!)\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            let interim = try socket.receive(until: "\r\n\r\n")
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue"), "\(interim)")
            try socket.send("hello")
            let answer = try socket.receive(until: "}")
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            let content = try await AgentBoxClient(endpoint: server.endpoint, token: server.token).readFileData("expect", path: "/workspace/e.txt")
            #expect(content == Data("hello".utf8))
            await server.stop()
        }
    }

    @Test func largeFilesStreamWithBoundedServerMemory() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--sandbox", canSandbox ? "linux" : "unsandboxed"])
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("big")
            let before = residentMemory(server.process.processIdentifier)
            let size = 256 << 20
            let chunk = ByteBuffer(repeating: 0x61, count: 1 << 20)
            let body = AsyncStream<ByteBuffer> { continuation in
                for _ in 0..<(size >> 20) { continuation.yield(chunk) }
                continuation.finish()
            }
            let written = try await client.writeFile("big", path: "/workspace/big.bin", body: .stream(body, length: .known(Int64(size))))
            #expect(written.bytesWritten == Int64(size))
            var received = 0
            for try await part in try await client.readFile("big", path: "/workspace/big.bin") { received += part.readableBytes }
            #expect(received == size)
            let growth = residentMemory(server.process.processIdentifier) - before
            #expect(growth < 96 << 20, "moving 256 MiB each way grew the server by \(growth >> 20) MiB")
            await server.stop()
        }
    }

    @Test(.enabled(if: canSandbox, "needs bubblewrap and root"))
    func cpCopiesDirectoriesBothWays() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data)
            let environment = ["AGENTBOX_ENDPOINT": server.endpoint.absoluteString, "AGENTBOX_TOKEN": server.token!]
            let local = data.deletingLastPathComponent().appendingPathComponent("local")
            try FileManager.default.createDirectory(at: local.appendingPathComponent("a/b"), withIntermediateDirectories: true)
            try "deep".write(to: local.appendingPathComponent("a/b/c.txt"), atomically: true, encoding: .utf8)
            try "top".write(to: local.appendingPathComponent("top.txt"), atomically: true, encoding: .utf8)
            _ = try await AgentBoxBinary.run(["workspaces", "create", "cp"], environment: environment)
            let up = try await AgentBoxBinary.run(["cp", local.path, "cp:/workspace/src"], environment: environment)
            #expect(up.status == 0, "\(up.stderr)")
            let listing = try await AgentBoxBinary.run(["fs", "ls", "cp", "/workspace/src", "-r"], environment: environment)
            #expect(listing.stdout.contains("/workspace/src/a/b/c.txt") && listing.stdout.contains("/workspace/src/top.txt"))
            let back = data.deletingLastPathComponent().appendingPathComponent("back")
            let down = try await AgentBoxBinary.run(["cp", "cp:/workspace/src", back.path], environment: environment)
            #expect(down.status == 0, "\(down.stderr)")
            #expect(try String(contentsOf: back.appendingPathComponent("a/b/c.txt"), encoding: .utf8) == "deep")
            let cat = try await AgentBoxBinary.run(["fs", "cat", "cp", "src/top.txt"], environment: environment)
            #expect(cat.stdout == "top")
            await server.stop()
        }
    }
}

/// The resident memory of a process, in bytes.
func residentMemory(_ pid: Int32) -> Int {
    guard let status = KernelFile.read("/proc/\(pid)/status"),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { return 0 }
    return kilobytes << 10
}

/// A blocking TCP connection to loopback with a 10 s receive timeout, for tests that must see raw HTTP/1.1.
final class RawSocket {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw POSIXError(.EIO) }
    }

    /// Reads until the peer closes (`closed`) or 10 s pass without a byte.
    func receiveUntilClosed() -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count == 0 { return (received, true) }
            if count < 0 { return (received, false) }
            received += buffer[..<count]
        }
    }

    /// Reads until `marker` has arrived (or the peer closes, or 10 s pass) and returns what arrived.
    func receive(until marker: String) throws -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: received, as: UTF8.self).contains(marker) {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            received += buffer[..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }
}

/// One HTTP/1.1 answer read off a raw connection (bodies by `Content-Length` or chunked).
struct RawHTTPResponse {
    var status: Int
    /// Lowercased names; the last value of each.
    var headers: [String: String]
    var body: String

    /// Every complete answer in `bytes`, in order.
    static func parseAll(_ bytes: [UInt8]) -> [RawHTTPResponse] {
        var answers: [RawHTTPResponse] = []
        var rest = bytes[...]
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        while let end = rest.firstRange(of: separator) {
            let lines = String(decoding: rest[rest.startIndex..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
            let parts = lines[0].split(separator: " ")
            guard parts.count >= 2, let status = Int(parts[1]) else { break }
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            rest = rest[end.upperBound...]
            var body: [UInt8] = []
            if headers["transfer-encoding"]?.lowercased() == "chunked" {
                while let line = rest.firstRange(of: Array("\r\n".utf8)),
                    let size = Int(String(decoding: rest[rest.startIndex..<line.lowerBound], as: UTF8.self), radix: 16)
                {
                    rest = rest[line.upperBound...]
                    guard rest.count >= size + 2 else { return answers }
                    body += rest.prefix(size)
                    rest = rest.dropFirst(size + 2)
                    if size == 0 { break }
                }
            } else {
                let length = Int(headers["content-length"] ?? "0") ?? 0
                guard rest.count >= length else { break }
                body = Array(rest.prefix(length))
                rest = rest.dropFirst(length)
            }
            answers.append(RawHTTPResponse(status: status, headers: headers, body: String(decoding: body, as: UTF8.self)))
        }
        return answers
    }
}
