import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How the tests start SeaweedFS's `weed server` (master, volume, filer and S3 gateway in one process) on loopback: the
/// one place for its arguments, its S3 identity file, its ports and the sockets it leaves behind. The blob tests keep
/// one server per test process (`WeedServer`); the cluster's end-to-end test starts its own (`WeedProcess`).
public enum WeedLaunch {
    /// The eight ports `arguments` needs: master, master gRPC, volume, volume gRPC, filer, filer gRPC, S3, S3 gRPC.
    public static let portCount = 8

    /// `weed server`'s arguments for a server in `directory` (its `data/` and `s3.json` inside) on `ports`, with its
    /// local sockets in `directory` too: their default paths in /tmp are shared by every weed on the machine, and a
    /// second weed there exits at once.
    public static func arguments(directory: String, ports: [Int]) -> [String] {
        precondition(ports.count == portCount)
        return [
            "server", "-dir=\(directory)/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.port=\(ports[0])", "-master.port.grpc=\(ports[1])", "-master.volumeSizeLimitMB=64",
            "-volume.port=\(ports[2])", "-volume.port.grpc=\(ports[3])", "-volume.max=0", "-volume.preStopSeconds=0",
            "-filer", "-filer.port=\(ports[4])", "-filer.port.grpc=\(ports[5])",
            "-s3", "-s3.port=\(ports[6])", "-s3.port.grpc=\(ports[7])", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-s3.config=\(directory)/s3.json", "-s3.localSocket=\(directory)/s3.sock",
            "-filer.localSocket=\(directory)/filer.sock",
        ]
    }

    /// The S3 endpoint of a server started on `ports`.
    public static func endpoint(ports: [Int]) -> String { "http://127.0.0.1:\(ports[6])" }

    /// Makes `directory/data` and writes `directory/s3.json` with one identity that may do anything, so that every
    /// request is checked against a SigV4 signature made with `secretKey`.
    public static func prepare(directory: String, name: String, accessKey: String, secretKey: String) throws {
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let identity: [String: Any] = [
            "name": name, "credentials": [["accessKey": accessKey, "secretKey": secretKey]],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        ]
        let json = try JSONSerialization.data(withJSONObject: ["identities": [identity]])
        try json.write(to: URL(fileURLWithPath: directory + "/s3.json"))
    }

    /// The sockets weed makes in /tmp for its gRPC `ports` (`/tmp/seaweedfs-*-<port>.sock`), which no option moves and
    /// a killed weed leaves behind, as shell patterns.
    public static func socketPatterns(ports: [Int]) -> [String] {
        ports.map { "/tmp/seaweedfs-*-\($0).sock" }
    }

    /// Removes such sockets left on `ports`: one left on a port chosen now would make the new weed exit at once.
    public static func removeStaleSockets(ports: [Int]) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
        for name in names where name.hasPrefix("seaweedfs-") && ports.contains(where: { name.hasSuffix("-\($0).sock") }) {
            try? FileManager.default.removeItem(atPath: "/tmp/" + name)
        }
    }

    public struct NoFreePort: Error, CustomStringConvertible {
        public var description: String { "no free loopback port" }
    }

    /// `count` ports that were free a moment ago (each bound to port 0 on loopback, all held until every one is
    /// chosen, then closed).
    public static func freeLoopbackPorts(_ count: Int = portCount) throws -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        var ports: [Int] = []
        while ports.count < count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw NoFreePort() }
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                    bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
                }
            }
            guard bound else { throw NoFreePort() }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }
}
