import Foundation

/// Runs `connection` over this process's stdin and stdout until stdin ends: what an ACP agent process does.
///
/// Standard input is read on a thread of its own (a blocking read must not hold one of the few threads of the
/// concurrency pool); each line is handled before the next is read, which keeps their order.
public enum StandardIO {
    /// A connection that writes whole lines to stdout, one at a time.
    public static func connection() -> JSONRPCConnection {
        let output = Output()
        return JSONRPCConnection { line in await output.write(line) }
    }

    public static func serve(_ connection: JSONRPCConnection) async {
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                feed(descriptor: 0, into: connection)
                finished.resume()
            }
        }
        await connection.close()
    }

    /// Reads `descriptor` to its end (blocking: call it on a thread of its own) and hands each line to
    /// `connection`, waiting for each to be handled before the next, which keeps their order.
    static func feed(descriptor: Int32, into connection: JSONRPCConnection, maximumLine: Int = 16 << 20) {
        var splitter = LineSplitter(maximum: maximumLine)
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0, let lines = try? splitter.append(buffer[..<count]) else { return }
            for line in lines {
                let handled = DispatchSemaphore(value: 0)
                Task {
                    await connection.receive(line: line)
                    handled.signal()
                }
                handled.wait()
            }
        }
    }

    private actor Output {
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
}
