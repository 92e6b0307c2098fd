import CAgentBoxSandbox
import Foundation
import Synchronization

/// One thread that waits, with one epoll set, for every supervisor's control socket to have something to read, and
/// tells that socket's reader. The server holds no pipe per sandbox for the supervisor's replies (they come on the
/// control socket, see ``Supervisor``), and needs no event-loop channel per socket either.
///
/// Each socket is registered under a token that is never reused; the thread finds the reader by token, never by
/// descriptor number, so a number closed and taken again by another socket can never reach the wrong reader. A
/// reader reads what it takes (at most a few messages) and returns: epoll is level-triggered, so a socket with more
/// waiting is reported again after the others had their turn. A sandbox flooding its socket so costs that one
/// sandbox, its share of one thread.
final class ControlSocketReader: Sendable {
    static var shared: ControlSocketReader { current.withLock { reader in
        if let reader, reader.epoll >= 0 { return reader }
        let made = ControlSocketReader()
        reader = made
        return made
    } }
    private static let current = Mutex<ControlSocketReader?>(nil)

    /// Called on the reader thread when the socket is readable (or hung up); reads without blocking.
    typealias Readable = @Sendable () -> Void

    private let epoll: Int32
    private let readers = Readers()

    private final class Readers: Sendable {
        let table = Mutex<(next: UInt64, byToken: [UInt64: Readable])>((1, [:]))
    }

    private init() {
        // Made at the first sandbox's start; a process out of descriptors then gets no reader, and each registration
        // fails (the boot with it) until one is made.
        epoll = ab_epoll_create()
        guard epoll >= 0 else { return }
        let (epoll, readers) = (self.epoll, self.readers)
        let thread = Thread { Self.run(epoll: epoll, readers: readers) }
        thread.name = "agentbox-control-sockets"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// Starts telling `readable` when `fd` has something to read; returns the token to stop with. Throws when epoll
    /// refuses the descriptor.
    func register(_ fd: Int32, _ readable: @escaping Readable) throws -> UInt64 {
        guard epoll >= 0 else { throw SandboxError(.system, "the server could not make its reader of sandboxes (epoll_create1 failed)") }
        let token = readers.table.withLock { readers in
            defer { readers.next += 1 }
            readers.byToken[readers.next] = readable
            return readers.next
        }
        guard ab_epoll_add(epoll, fd, token) == 0 else {
            let error = SandboxError.errno("epoll_ctl")
            _ = readers.table.withLock { $0.byToken.removeValue(forKey: token) }
            throw error
        }
        return token
    }

    /// Stops telling the reader of `token` about `fd`. Call while `fd` is still open (before closing it); a report
    /// already taken by the thread may still reach the reader once, which must then find the socket closed.
    func unregister(_ fd: Int32, token: UInt64) {
        _ = ab_epoll_remove(epoll, fd)
        _ = readers.table.withLock { $0.byToken.removeValue(forKey: token) }
    }

    private static func run(epoll: Int32, readers: Readers) {
        let capacity = 256
        let tokens = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        defer { tokens.deallocate() }
        while true {
            let count = ab_epoll_wait(epoll, tokens, Int32(capacity))
            if count < 0 {
                if errno == EINTR { continue }
                fatalError("epoll_wait: \(String(cString: strerror(errno)))")
            }
            for index in 0..<Int(count) {
                let token = tokens[index]
                let readable = readers.table.withLock { $0.byToken[token] }
                readable?()
            }
        }
    }
}
