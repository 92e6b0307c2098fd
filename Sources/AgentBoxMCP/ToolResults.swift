import AgentBoxAPI
import Foundation

/// What `read_file` answers: the file's text, or its bytes in base64 when they are not UTF-8.
public struct FileContent: Codable, Sendable, Equatable {
    public var path: String
    /// The whole file's size in bytes (more than `content` holds when `truncated`).
    public var size: Int64
    /// `utf8`, or `base64` when the bytes are not valid UTF-8.
    public var encoding: OutputEncoding
    public var content: String
    /// True when the file is larger than ``AgentBoxTools/Limits/maxReadBytes`` and only its beginning is here.
    public var truncated: Bool

    public init(path: String, size: Int64, encoding: OutputEncoding, content: String, truncated: Bool) {
        self.path = path
        self.size = size
        self.encoding = encoding
        self.content = content
        self.truncated = truncated
    }

    /// The bytes `content` carries.
    public var bytes: [UInt8] { OutputText.bytes(content, encoding: encoding) }
}

/// What `process_output` answers: the process (running or exited, with its exit code) and the end of its output.
public struct ProcessReport: Codable, Sendable, Equatable {
    public var process: WorkspaceProcess
    public var stdout: String
    public var stderr: String
    public var stdoutEncoding: OutputEncoding?
    public var stderrEncoding: OutputEncoding?
    /// True when older output was dropped (by the process's buffer, or to keep this answer within its limit).
    public var truncated: Bool

    public init(
        process: WorkspaceProcess, stdout: String, stderr: String, stdoutEncoding: OutputEncoding? = nil, stderrEncoding: OutputEncoding? = nil,
        truncated: Bool
    ) {
        self.process = process
        self.stdout = stdout
        self.stderr = stderr
        self.stdoutEncoding = stdoutEncoding
        self.stderrEncoding = stderrEncoding
        self.truncated = truncated
    }
}

/// Cutting bytes to a size without splitting a UTF-8 character, so that text stays text.
enum TextCut {
    /// `bytes`, cut from a longer text, without the character the cut fell in (when it fell inside one).
    static func droppingIncompleteEnd(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        // Step back over continuation bytes (10xxxxxx) to the lead byte of the last character; keep that character
        // only if all its bytes are here.
        var start = bytes.count
        while start > 0, start > bytes.count - 4, bytes[start - 1] & 0xC0 == 0x80 { start -= 1 }
        guard start > 0 else { return bytes[...] }
        let lead = bytes[start - 1]
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return start - 1 + length > bytes.count ? bytes[..<(start - 1)] : bytes[...]
    }

    /// The last bytes of `bytes` up to `limit`, starting at the beginning of a UTF-8 sequence.
    static func suffix(_ bytes: [UInt8], limit: Int) -> ArraySlice<UInt8> {
        guard bytes.count > limit else { return bytes[...] }
        var start = bytes.count - limit
        var skipped = 0
        while start < bytes.count, skipped < 3, bytes[start] & 0xC0 == 0x80 {
            start += 1
            skipped += 1
        }
        return bytes[start...]
    }
}
