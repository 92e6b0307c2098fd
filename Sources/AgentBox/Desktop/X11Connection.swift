import CAgentBoxDesktop
import Glibc
import Foundation
import Synchronization

/// The server's own X11 client of a workspace's display: the connection setup and `GetImage` of the root window,
/// nothing else. Screenshots go through it (one request and one reply, no program started per shot); everything that
/// needs the X libraries' knowledge (keysyms, the window manager's hints) goes through Debian's tools in the sandbox.
///
/// The socket is the display's abstract Unix socket, made inside the workspace's network namespace
/// (``WorkspaceRuntime``'s foothold), so the server reaches nothing but the workspace's own display. What comes back
/// is parsed as untrusted: every length is checked before it is used, and the socket has send and receive time-outs,
/// so a hostile program posing as the X server can make a screenshot fail, never hang or overrun the server.
///
/// Blocking: call its methods off the cooperative pool (``WorkspaceRuntime`` runs them on NIO's thread pool). One
/// request at a time: a lock serialises them.
final class X11Connection: Sendable {
    /// The root window and its size, from the connection setup.
    let root: UInt32
    let width: Int
    let height: Int
    private let descriptor: Mutex<CInt>

    private init(descriptor: CInt, root: UInt32, width: Int, height: Int) {
        self.descriptor = Mutex(descriptor)
        self.root = root
        self.width = width
        self.height = height
    }

    deinit { close() }

    /// Closes the socket (once).
    func close() {
        descriptor.withLock { fd in
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
        }
    }

    /// The largest setup reply accepted: vendor, formats, screens and their visuals (Xvfb's is about 8 KB).
    static let maxSetupBytes = 1 << 20

    /// Sets the connection up over `fd` (which it owns from now on, even when it throws): no authorization (the
    /// display admits local clients), then checks that the first screen is 24-bit true colour at 32 bits per pixel,
    /// least significant byte first (what Xvfb serves with `-screen 0 WxHx24` on a little-endian host).
    static func open(fd: CInt, timeout: Duration = .seconds(10)) throws -> X11Connection {
        var timeval = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeval, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeval, socklen_t(MemoryLayout<timeval>.size))
        do {
            // 'l': little-endian; protocol 11.0; no authorization name or data.
            try send(fd, [0x6C, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            let head = try receive(fd, count: 8)
            let extra = Int(UInt16(head[6]) | UInt16(head[7]) << 8) * 4
            guard extra <= maxSetupBytes else { throw X11Error("the display's setup reply is too large") }
            let body = try receive(fd, count: extra)
            guard head[0] == 1 else {
                let reason = String(decoding: body.prefix(Int(head[1])), as: UTF8.self)
                throw X11Error("the display refused the connection: \(reason)")
            }
            let setup = try SetupReply(body)
            return X11Connection(descriptor: fd, root: setup.root, width: setup.width, height: setup.height)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// The pixels of a region of the root window (B G R X, `width * 4` bytes a row).
    func image(x: Int, y: Int, width: Int, height: Int) throws -> [UInt8] {
        guard x >= 0, y >= 0, width > 0, height > 0, x + width <= self.width, y + height <= self.height else {
            throw X11Error("the region is outside the display")
        }
        return try descriptor.withLock { fd in
            guard fd >= 0 else { throw X11Error("the display connection is closed") }
            var request = [UInt8](repeating: 0, count: 20)
            request[0] = 73  // GetImage
            request[1] = 2  // ZPixmap
            put16(&request, 2, 5)
            put32(&request, 4, root)
            put16(&request, 8, UInt16(x))
            put16(&request, 10, UInt16(y))
            put16(&request, 12, UInt16(width))
            put16(&request, 14, UInt16(height))
            put32(&request, 16, 0xFFFF_FFFF)
            do {
                try Self.send(fd, request)
                var pixels = [UInt8](repeating: 0, count: width * height * 4)
                var xError: CInt = 0
                let status = pixels.withUnsafeMutableBufferPointer {
                    ab_x11_read_image(fd, $0.baseAddress, CInt(width), CInt(height), &xError)
                }
                switch status {
                case 0: return pixels
                case -1: throw X11Error("the display connection failed: \(String(cString: strerror(errno)))")
                case -2: throw X11Error("the display answered with X error \(xError)")
                default: throw X11Error("the display's answer is malformed")
                }
            } catch {
                // After a failure the stream's framing is unknown: the connection is not used again.
                Glibc.close(fd)
                fd = -1
                throw error
            }
        }
    }

    /// Whether the connection is still usable (a failed request closes it).
    var isOpen: Bool { descriptor.withLock { $0 >= 0 } }

    private func put16(_ bytes: inout [UInt8], _ at: Int, _ value: UInt16) {
        bytes[at] = UInt8(value & 0xFF)
        bytes[at + 1] = UInt8(value >> 8)
    }

    private func put32(_ bytes: inout [UInt8], _ at: Int, _ value: UInt32) {
        for index in 0..<4 { bytes[at + index] = UInt8((value >> (8 * UInt32(index))) & 0xFF) }
    }

    private static func send(_ fd: CInt, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw X11Error("cannot write to the display: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
    }

    private static func receive(_ fd: CInt, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let got = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, count - offset, 0) }
            if got < 0 {
                if errno == EINTR { continue }
                throw X11Error("cannot read from the display: \(String(cString: strerror(errno)))")
            }
            if got == 0 { throw X11Error("the display closed the connection") }
            offset += got
        }
        return bytes
    }
}

/// The parts of an X11 connection setup reply that a screenshot needs, read with every offset checked.
struct SetupReply {
    var root: UInt32
    var width: Int
    var height: Int

    /// `body`: the reply after its first 8 bytes.
    init(_ body: [UInt8]) throws {
        var reader = LittleEndianReader(body)
        try reader.skip(16)  // release, resource id base and mask, motion buffer size
        let vendorLength = Int(try reader.u16())
        try reader.skip(2)  // maximum request length
        let screens = Int(try reader.u8())
        let formats = Int(try reader.u8())
        let imageByteOrder = try reader.u8()
        try reader.skip(9)
        try reader.skip((vendorLength + 3) & ~3)
        var bitsPerPixel24: UInt8?
        for _ in 0..<formats {
            let depth = try reader.u8()
            let bitsPerPixel = try reader.u8()
            try reader.skip(6)
            if depth == 24 { bitsPerPixel24 = bitsPerPixel }
        }
        guard screens >= 1 else { throw X11Error("the display has no screen") }
        root = try reader.u32()
        try reader.skip(16)  // colormap, white, black, input masks
        width = Int(try reader.u16())
        height = Int(try reader.u16())
        try reader.skip(14)  // millimetres, installed maps, root visual, backing stores, save unders
        let rootDepth = try reader.u8()
        guard rootDepth == 24, bitsPerPixel24 == 32, imageByteOrder == 0 else {
            throw X11Error("the display is not 24-bit colour at 32 bits per pixel, LSB first")
        }
        guard width > 0, height > 0, width <= Int(AB_DESKTOP_MAX_SIDE), height <= Int(AB_DESKTOP_MAX_SIDE) else {
            throw X11Error("the display's size \(width)x\(height) is out of range")
        }
    }
}

/// Reads little-endian integers from bytes, throwing (never trapping) at their end.
struct LittleEndianReader {
    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func skip(_ count: Int) throws {
        guard count >= 0, offset + count <= bytes.count else { throw X11Error("the display's setup reply is truncated") }
        offset += count
    }

    mutating func u8() throws -> UInt8 {
        try skip(1)
        return bytes[offset - 1]
    }

    mutating func u16() throws -> UInt16 {
        try skip(2)
        return UInt16(bytes[offset - 2]) | UInt16(bytes[offset - 1]) << 8
    }

    mutating func u32() throws -> UInt32 {
        try skip(4)
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset - 4 + $1]) << (8 * UInt32($1)) }
    }
}

/// What went wrong talking to a display (mapped by the runtime to an ``AgentBoxError``).
struct X11Error: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
