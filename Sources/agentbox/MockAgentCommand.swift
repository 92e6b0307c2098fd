import AgentBoxACP
import ArgumentParser
import Foundation

/// `agentbox mock-agent`: the deterministic ACP agent (see `MockAgent`) on stdin and stdout.
struct MockAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mock-agent",
        abstract: "Run the deterministic mock ACP agent on stdin/stdout (no model, no key).",
        discussion: """
            It echoes each prompt as agent_message_chunks, then acts on keywords: plan, tool, permission, \
            write PATH TEXT, read PATH, run COMMAND, long (honours session/cancel), error. See docs/AGENTS.md.
            """)

    func run() async throws {
        let output = StandardOutput()
        let connection = JSONRPCConnection { line in await output.write(line) }
        let agent = MockAgent(connection: connection)
        await agent.start()
        // Standard input is read on a thread of its own (a blocking read must not hold one of the few threads of
        // the concurrency pool); each line is handled before the next is read, which keeps their order.
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                var splitter = LineSplitter()
                var buffer = [UInt8](repeating: 0, count: 64 << 10)
                reading: while true {
                    let count = read(0, &buffer, buffer.count)
                    if count < 0, errno == EINTR { continue }
                    guard count > 0, let lines = try? splitter.append(buffer[..<count]) else { break }
                    for line in lines {
                        let handled = DispatchSemaphore(value: 0)
                        Task {
                            await connection.receive(line: line)
                            handled.signal()
                        }
                        handled.wait()
                    }
                    continue reading
                }
                finished.resume()
            }
            thread.start()
        }
        await connection.close()
    }
}

/// Writes whole lines to standard output, one at a time.
private actor StandardOutput {
    func write(_ data: Data) {
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let count = Foundation.write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += count
            }
        }
    }
}
