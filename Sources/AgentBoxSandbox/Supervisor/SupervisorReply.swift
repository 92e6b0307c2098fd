/// One reply of `agentbox-sandbox-init` on its control socket (see the protocol at the top of its main.c), parsed
/// strictly: a message that does not parse is one of its or bwrap's diagnostics.
enum SupervisorReply: Equatable {
    case ready
    case started(id: UInt64, pid: Int32)
    case failed(id: UInt64, errno: Int32, stage: Stage)
    case exited(id: UInt64, code: Int32, signal: Int32)
    /// The sandbox is parked: no process is left in it, its tmpfs mounts are as built (the `park` request).
    case parked
    /// The sandbox cannot be parked (one word of why): the server stops it instead.
    case unparkable(String)
    /// The supervisor refused a request (only a server bug sends one it refuses).
    case error(String)

    /// Where a start failed.
    enum Stage: String {
        case alloc, terminal, pipe, fork, cwd, exec, setup
    }

    /// Parses one line (without its newline); `nil` when it is not a reply.
    init?(_ line: UnsafeRawBufferPointer) {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        func number<T: FixedWidthInteger>(_ index: Int, _: T.Type) -> T? {
            T(String(decoding: parts[index], as: UTF8.self))
        }
        switch parts.first.map({ String(decoding: $0, as: UTF8.self) }) {
        case "ready" where parts.count == 1:
            self = .ready
        case "started" where parts.count == 3:
            guard let id = number(1, UInt64.self), let pid = number(2, Int32.self), pid > 0 else { return nil }
            self = .started(id: id, pid: pid)
        case "failed" where parts.count == 4:
            guard let id = number(1, UInt64.self), let code = number(2, Int32.self), (0..<4096).contains(code),
                let stage = Stage(rawValue: String(decoding: parts[3], as: UTF8.self))
            else { return nil }
            self = .failed(id: id, errno: code, stage: stage)
        case "exited" where parts.count == 4:
            guard let id = number(1, UInt64.self), let code = number(2, Int32.self), let signal = number(3, Int32.self),
                (-1...255).contains(code), (0..<128).contains(signal)
            else { return nil }
            self = .exited(id: id, code: code, signal: signal)
        case "parked" where parts.count == 1:
            self = .parked
        case "unparkable" where parts.count == 2:
            let reason = String(decoding: parts[1], as: UTF8.self)
            guard !reason.isEmpty, reason.count <= 32, reason.allSatisfy({ $0.isLetter || $0 == "-" }) else { return nil }
            self = .unparkable(reason)
        case "error" where parts.count > 1:
            self = .error(String(decoding: line.dropFirst(6), as: UTF8.self))
        default:
            return nil
        }
    }
}
