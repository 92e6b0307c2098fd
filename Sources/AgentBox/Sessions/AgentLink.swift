import AgentBoxACP
import AgentBoxAPI
import AgentBoxSandbox
import Foundation
import NIOCore
import Synchronization

/// A running agent process and the ACP connection over its stdio.
///
/// Its stdout is read line by line into the connection, one line at a time (the reader waits for each line's
/// handling, so a flood of updates is held back in the pipe rather than in memory); its stderr is kept, the last
/// few KiB, for the error that reports its exit.
final class AgentLink: Sendable {
    let process: SandboxProcess
    let connection: JSONRPCConnection
    private let stderrTail = Mutex<[UInt8]>([])
    private static let stderrKept = 8 << 10
    /// The longest line the agent may send (a whole file read back, say).
    static let maxLineBytes = 32 << 20

    init(process: SandboxProcess) {
        self.process = process
        connection = JSONRPCConnection { line in
            try await process.write(stdin: ByteBuffer(bytes: line))
        }
    }

    /// Reads the agent's output until it ends, then closes the connection and returns how the process ended.
    func run() async -> (status: SandboxExitStatus, stderr: String, problem: String?) {
        let problem = await withTaskGroup(of: String?.self) { group in
            group.addTask {
                var problem: String?
                var splitter = LineSplitter(maximum: Self.maxLineBytes)
                do {
                    try await self.process.stdout.executeThenClose { inbound, _ in
                        for try await chunk in inbound {
                            for line in try splitter.append(chunk.readableBytesView) {
                                await self.connection.receive(line: line)
                            }
                        }
                    }
                } catch let error as LineSplitter.LineTooLong {
                    problem = "the agent sent \(error)"
                    self.process.killTree()
                } catch {}
                await self.connection.close()
                return problem
            }
            group.addTask {
                try? await self.process.stderr.executeThenClose { inbound, _ in
                    for try await chunk in inbound {
                        self.stderrTail.withLock { tail in
                            tail.append(contentsOf: chunk.readableBytesView)
                            if tail.count > Self.stderrKept { tail.removeFirst(tail.count - Self.stderrKept) }
                        }
                    }
                }
                return nil
            }
            var problem: String?
            for await found in group where found != nil { problem = found }
            return problem
        }
        let status = await process.exitStatus()
        let stderr = stderrTail.withLock { String(decoding: $0, as: UTF8.self) }
        return (status, stderr, problem)
    }

    /// Stops the agent: its stdin closes, which lets a well-behaved agent save its state and exit; after `grace`,
    /// it and everything it started are killed.
    func stop(grace: Duration = .seconds(3)) async {
        await process.closeStdin()
        let process = self.process
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await process.exitStatus() }
            group.addTask { try? await Task.sleep(for: grace) }
            await group.next()
            group.cancelAll()
        }
        process.killTree()
    }
}
