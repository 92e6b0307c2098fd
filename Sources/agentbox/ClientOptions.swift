import AgentBoxAPI
import AgentBoxClient
import ArgumentParser
import Foundation

/// Where the server is and how to authenticate: flags, else AGENTBOX_ENDPOINT and AGENTBOX_TOKEN.
struct ClientOptions: ParsableArguments {
    @Option(help: "The server's URL (default: $AGENTBOX_ENDPOINT, else http://127.0.0.1:2468).")
    var endpoint: String?

    @Option(help: "The bearer token (default: $AGENTBOX_TOKEN).")
    var token: String?

    func makeClient() throws -> AgentBoxClient {
        let environment = ProcessInfo.processInfo.environment
        let text = endpoint ?? environment["AGENTBOX_ENDPOINT"] ?? "http://127.0.0.1:2468"
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ValidationError("--endpoint must be an http(s) URL, not '\(text)'")
        }
        let token = token ?? environment["AGENTBOX_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return AgentBoxClient(endpoint: url, token: token)
    }
}

/// Runs a client call, turning a server error into one line on stderr and exit code 1.
func runClientCall(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as AgentBoxClientError {
        printError("error: \(error.problem.detail) (\(error.status))")
        throw ExitCode(1)
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        if isBrokenPipe(error) { endByBrokenPipe() }
        let text = "\(error)"
        if text.contains("Connection refused") || text.contains("errno: 111") {
            // NIO's words for it ("connection reset (error set): Connection refused) (errno: 111)") name neither cause nor fix.
            let endpoint = ProcessInfo.processInfo.environment["AGENTBOX_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:2468"
            printError("error: cannot reach the AgentBox server: connection refused (is agentbox serve running there? --endpoint or AGENTBOX_ENDPOINT, now \(endpoint) unless --endpoint says otherwise)")
        } else {
            printError("error: \(text)")
        }
        throw ExitCode(1)
    }
}

func printError(_ message: String) {
    try? FileHandle.standardError.write(contentsOf: Data((message + "\n").utf8))
}

/// Writes to stdout. When its reader has gone (`agentbox exec … | head -1`), this process ends as any Unix tool
/// does, by SIGPIPE, quietly: NIO ignores SIGPIPE process-wide, so the write fails with EPIPE instead, which
/// `FileHandle.write(_:)` turned into a trap and other writes into an error message.
func writeStandardOutput(_ data: Data) {
    do {
        try FileHandle.standardOutput.write(contentsOf: data)
    } catch {
        if isBrokenPipe(error) { endByBrokenPipe() }
        printError("error: cannot write the output: \(error)")
        exit(1)
    }
}

/// Whether `error` is a write's EPIPE (Foundation wraps it in a Cocoa error).
func isBrokenPipe(_ error: any Error) -> Bool {
    let error = error as NSError
    if error.domain == NSPOSIXErrorDomain, error.code == Int(EPIPE) { return true }
    if let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError { return isBrokenPipe(underlying) }
    return false
}

/// Ends this process by SIGPIPE, as a write into a pipe with no reader ends a Unix tool (shells show 141).
func endByBrokenPipe() -> Never {
    signal(SIGPIPE, SIG_DFL)
    raise(SIGPIPE)
    exit(141)
}

/// Prints `value` as indented JSON.
func printJSON(_ value: some Encodable) throws {
    let encoder = AgentBoxJSON.makeEncoder()
    encoder.outputFormatting.insert(.prettyPrinted)
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Prints a line to stdout and flushes it at once, so that a pipe or a test reading it sees it now.
func printFlushed(_ line: String) {
    writeStandardOutput(Data((line + "\n").utf8))
}
