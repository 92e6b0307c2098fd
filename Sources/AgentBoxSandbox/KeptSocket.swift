import Foundation
import Synchronization

/// A socket descriptor kept with a sandbox between two of its boots: the listening socket of the workspace's egress
/// proxy, which lives in the sandbox's network namespace and so can serve the next boot of a parked sandbox as it is
/// (no thread joins the namespace to listen again). Owned here until taken; closed when dropped.
public final class KeptSocket: Sendable {
    private let descriptor: Mutex<Int32?>

    public init(_ fd: Int32? = nil) {
        descriptor = Mutex(fd)
    }

    deinit { close() }

    /// Takes the descriptor (the caller owns it from here on), or `nil` when none is kept.
    public func take() -> Int32? {
        descriptor.withLock { fd in
            defer { fd = nil }
            return fd
        }
    }

    /// Keeps `fd` (owned from here on), closing the one kept before.
    public func keep(_ fd: Int32) {
        let old = descriptor.withLock { kept in
            defer { kept = fd }
            return kept
        }
        if let old { Glibc.close(old) }
    }

    /// Closes the kept descriptor, if any.
    public func close() {
        if let fd = take() { Glibc.close(fd) }
    }
}
