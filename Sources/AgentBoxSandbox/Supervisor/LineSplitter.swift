import Foundation

/// Splits a byte stream into lines, in time linear in the bytes it is fed and in memory bounded by the longest line
/// it accepts, whatever the stream holds: for what comes out of a sandbox, which may be anything.
///
/// ```swift
/// var splitter = LineSplitter(maximumLength: 256, overflow: .fail)
/// try buffer.withUnsafeReadableBytes { try splitter.feed($0) { line in handle(line) } }
/// ```
struct LineSplitter {
    /// What happens to a line longer than `maximumLength`.
    enum Overflow {
        /// `feed` throws ``LineTooLong``: the stream is not what it should be.
        case fail
        /// The line's first `maximumLength - 1` bytes are handed over as a line, the rest up to its newline is dropped.
        case truncate
    }

    /// A line ran past `maximumLength` with ``Overflow/fail``.
    struct LineTooLong: Error {}

    /// The longest line accepted, newline included.
    let maximumLength: Int
    let overflow: Overflow
    /// The start of a line whose newline has not come yet: always shorter than `maximumLength`.
    private var partial: [UInt8] = []
    /// With ``Overflow/truncate``: the rest of an over-long line is being dropped, up to its newline.
    private var dropping = false

    init(maximumLength: Int, overflow: Overflow) {
        precondition(maximumLength > 1)
        self.maximumLength = maximumLength
        self.overflow = overflow
        partial.reserveCapacity(maximumLength)
    }

    /// The bytes held back, waiting for their newline (at most `maximumLength - 1`).
    var bufferedCount: Int { partial.count }

    /// Feeds `bytes` and hands every line they complete to `line`, without its newline (the bytes are valid during the
    /// call only). Throws ``LineTooLong`` (with ``Overflow/fail``) or what `line` throws; either ends the stream.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ line: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let base = bytes.baseAddress else { return }
        var offset = 0
        while offset < bytes.count {
            let start = base + offset
            let remaining = bytes.count - offset
            // memchr: each byte is looked at once, and fast in any build configuration.
            if let newline = memchr(start, 0x0A, remaining) {
                let length = UnsafeRawPointer(newline) - start
                try take(UnsafeRawBufferPointer(start: start, count: length), ended: true, line)
                offset += length + 1
            } else {
                try take(UnsafeRawBufferPointer(start: start, count: remaining), ended: false, line)
                offset = bytes.count
            }
        }
    }

    /// Takes `piece`, the next bytes of the current line; `ended` when its newline followed.
    private mutating func take(_ piece: UnsafeRawBufferPointer, ended: Bool, _ line: (UnsafeRawBufferPointer) throws -> Void) throws {
        if dropping {
            dropping = !ended
            return
        }
        let room = maximumLength - 1 - partial.count
        if piece.count > room {
            switch overflow {
            case .fail:
                partial.removeAll(keepingCapacity: true)
                throw LineTooLong()
            case .truncate:
                partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: piece[..<room]))
                defer { partial.removeAll(keepingCapacity: true) }
                dropping = !ended
                try partial.withUnsafeBytes(line)
                return
            }
        }
        if !ended {
            partial.append(contentsOf: piece)
        } else if partial.isEmpty {
            try line(piece)
        } else {
            partial.append(contentsOf: piece)
            defer { partial.removeAll(keepingCapacity: true) }
            try partial.withUnsafeBytes(line)
        }
    }
}
