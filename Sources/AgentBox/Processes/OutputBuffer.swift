import NIOCore

/// The output of one stream of a process, kept within a byte limit: the first bytes (an exec's result) or the most
/// recent ones (a long-running process's log).
struct OutputBuffer {
    enum Policy {
        case keepFirst(Int)
        case keepLast(Int)
    }

    let policy: Policy
    private var bytes: [UInt8] = []
    /// True once bytes were dropped.
    private(set) var truncated = false

    init(_ policy: Policy) {
        self.policy = policy
    }

    mutating func append(_ chunk: ByteBuffer) {
        switch policy {
        case .keepFirst(let limit):
            let room = limit - bytes.count
            if chunk.readableBytes > room { truncated = true }
            if room > 0 { bytes += chunk.readableBytesView.prefix(room) }
        case .keepLast(let limit):
            bytes += chunk.readableBytesView
            // Trim in batches, so that a stream of small chunks does not move the buffer on every append.
            if bytes.count > limit + limit / 2 || (bytes.count > limit && limit < 4096) {
                bytes.removeFirst(bytes.count - limit)
                truncated = true
            }
        }
    }

    /// The kept bytes. When the front was dropped, a UTF-8 sequence cut in half there is dropped too, so that text
    /// stays text.
    var contents: ArraySlice<UInt8> {
        switch policy {
        case .keepFirst:
            return bytes[...]
        case .keepLast(let limit):
            var slice = bytes.suffix(limit)
            if truncated {
                var dropped = 0
                while dropped < 3, let first = slice.first, first & 0xC0 == 0x80 {
                    slice = slice.dropFirst()
                    dropped += 1
                }
            }
            return slice
        }
    }
}

/// Splits a chunk of output so that a UTF-8 sequence cut by the chunk boundary waits for the next chunk: returns
/// the bytes to send now and the bytes to carry over (at most 3).
func splitAtUTF8Boundary(_ bytes: [UInt8]) -> (complete: ArraySlice<UInt8>, carry: ArraySlice<UInt8>) {
    var index = bytes.endIndex
    var continuation = 0
    while index > bytes.startIndex, continuation < 4 {
        index -= 1
        let byte = bytes[index]
        if byte & 0xC0 == 0x80 {
            continuation += 1
            continue
        }
        let expected: Int =
            switch byte {
            case 0xC0...0xDF: 2
            case 0xE0...0xEF: 3
            case 0xF0...0xF7: 4
            default: 1
            }
        if expected > continuation + 1 {
            return (bytes[..<index], bytes[index...])
        }
        break
    }
    return (bytes[...], [])
}
