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
        printError("error: \(error)")
        throw ExitCode(1)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// Prints `value` as indented JSON.
func printJSON(_ value: some Encodable) throws {
    let encoder = AgentBoxJSON.makeEncoder()
    encoder.outputFormatting.insert(.prettyPrinted)
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Prints a line to stdout and flushes it at once, so that a pipe or a test reading it sees it now.
func printFlushed(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
