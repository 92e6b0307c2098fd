import AgentBoxBlobs
import Foundation

// `agentbox-bench checkpoint WEED_OR_DIR [FILES] [MB]`: incremental file checkpoints (docs/BLOBS.md). Makes a tree of
// FILES files (default 10,000) holding MB megabytes (default 100) of random bytes in directories of 100, checkpoints it
// into a store, changes one file, checkpoints again from the first manifest, and restores the latest into an empty
// directory. The store is a local SeaweedFS when the argument is the `weed` binary (`bash scripts/setup-s3.sh`; it is
// started on loopback ports and stopped at the end), an S3 bucket for an `s3://` URL, else a DirectoryBlobStore in
// that directory. Prints a Markdown table.

func checkpointBenchmark(target: String, files: Int, megabytes: Int) async throws {
    let work = URL(fileURLWithPath: "/var/tmp").appendingPathComponent("agentbox-bench-checkpoint-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    var weed: (process: Process, ports: [Int])?
    defer {
        if let weed, weed.process.isRunning {
            weed.process.terminate()
            weed.process.waitUntilExit()
        }
        // weed's gRPC unix sockets, which no option moves out of /tmp and it leaves behind.
        for port in weed?.ports ?? [] {
            for name in ["s3-grpc", "filer-grpc", "volume-grpc", "master-grpc"] { unlink("/tmp/seaweedfs-\(name)-\(port).sock") }
        }
        try? FileManager.default.removeItem(at: work)
    }

    let store: any BlobStore
    let storeName: String
    if target.hasPrefix("s3://") || target.hasPrefix("http://") || target.hasPrefix("https://") {
        let configuration = try S3Configuration(url: target)
        try await S3Client(configuration: configuration).createBucket()
        store = S3BlobStore(configuration: configuration)
        storeName = "S3 at \(configuration.hostHeader)"
    } else if FileManager.default.isExecutableFile(atPath: target), !isDirectory(target) {
        let (process, ports, configuration) = try await startWeed(binary: target, directory: work.appendingPathComponent("weed"))
        weed = (process, ports)
        store = S3BlobStore(configuration: configuration)
        storeName = "SeaweedFS \(weedVersion(target)) on loopback (S3, SigV4)"
    } else {
        store = try DirectoryBlobStore(root: URL(fileURLWithPath: target).appendingPathComponent("bench-\(UUID().uuidString)"))
        storeName = "DirectoryBlobStore (fsync'd) in \(target)"
    }

    // The tree: random contents, so that no two files share a blob.
    let tree = work.appendingPathComponent("tree")
    let fileSize = megabytes * 1_000_000 / files
    var generator = SystemRandomNumberGenerator()
    for index in 0..<files {
        let directory = tree.appendingPathComponent(String(format: "d%03d", index / 100))
        if index % 100 == 0 { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) }
        var bytes = [UInt8](repeating: 0, count: fileSize)
        for offset in stride(from: 0, to: fileSize, by: 8) {
            withUnsafeBytes(of: generator.next()) { word in
                for k in 0..<min(8, fileSize - offset) { bytes[offset + k] = word[k] }
            }
        }
        try Data(bytes).write(to: directory.appendingPathComponent(String(format: "f%05d.bin", index)))
    }

    let checkpointer = FileCheckpointer()
    let prefix = "bench/\(UUID().uuidString)"
    let clock = ContinuousClock()
    let firstLog = LastProgress()
    var start = clock.now
    let first = try await checkpointer.checkpoint(root: tree, into: store, prefix: prefix, previous: nil, progress: firstLog.record)
    let firstTime = clock.now - start

    let middle = files / 2
    let changed = tree.appendingPathComponent(String(format: "d%03d/f%05d.bin", middle / 100, middle))
    try Data((0..<fileSize).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: changed)
    let secondLog = LastProgress()
    start = clock.now
    _ = try await checkpointer.checkpoint(root: tree, into: store, prefix: prefix, previous: first, progress: secondLog.record)
    let secondTime = clock.now - start

    start = clock.now
    let restored = try await checkpointer.restoreLatest(prefix: prefix, from: store, into: work.appendingPathComponent("restore"))
    let restoreTime = clock.now - start
    precondition(restored != nil)

    func row(_ name: String, _ time: Duration, _ progress: FileCheckpointer.Progress?) -> String {
        let p = progress ?? .init()
        return "| \(name) | \(String(format: "%.0f", milliseconds(time))) ms | \(p.filesRead) | \(p.objectsUploaded) | \(String(format: "%.1f", Double(p.bytesUploaded) / 1e6)) MB |"
    }
    print("| checkpoint of \(files) files, \(megabytes) MB, into \(storeName) | time | files read | objects uploaded | bytes uploaded |")
    print("|---|---|---|---|---|")
    print(row("first checkpoint", firstTime, firstLog.last))
    print(row("second checkpoint, one file changed", secondTime, secondLog.last))
    print("| restore of the latest into an empty directory | \(String(format: "%.0f", milliseconds(restoreTime))) ms | | | |")
}

private func isDirectory(_ path: String) -> Bool {
    var directory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
}

private func weedVersion(_ binary: String) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["version"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
    guard (try? process.run()) != nil else { return "" }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return output.split(separator: " ").dropFirst(2).first.map(String.init) ?? ""
}

/// Keeps the last progress report of a checkpoint.
private final class LastProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var value: FileCheckpointer.Progress?
    var last: FileCheckpointer.Progress? { lock.withLock { value } }
    var record: @Sendable (FileCheckpointer.Progress) -> Void { { progress in self.lock.withLock { self.value = progress } } }
}

/// Starts `weed server` (master, volume, filer, S3) on free loopback ports with one S3 identity, and waits until an
/// object can be written.
private func startWeed(binary: String, directory: URL) async throws -> (Process, [Int], S3Configuration) {
    try FileManager.default.createDirectory(at: directory.appendingPathComponent("data"), withIntermediateDirectories: true)
    let (access, secret) = ("BENCH", "bench-secret")
    try Data(
        #"{"identities":[{"name":"bench","credentials":[{"accessKey":"\#(access)","secretKey":"\#(secret)"}],"actions":["Admin","Read","Write","List"]}]}"#
            .utf8
    ).write(to: directory.appendingPathComponent("s3.json"))
    var ports: [Int] = []
    var sockets: [Int32] = []
    while ports.count < 8 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        sockets.append(fd)
        ports.append(Int(UInt16(bigEndian: address.sin_port)))
    }
    sockets.forEach { close($0) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = [
        "server", "-dir=\(directory.path)/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.port=\(ports[0])",
        "-master.port.grpc=\(ports[1])", "-master.volumeSizeLimitMB=256", "-volume.port=\(ports[2])", "-volume.port.grpc=\(ports[3])",
        "-volume.max=0", "-volume.preStopSeconds=0", "-filer", "-filer.port=\(ports[4])", "-filer.port.grpc=\(ports[5])", "-s3",
        "-s3.port=\(ports[6])", "-s3.port.grpc=\(ports[7])", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-s3.config=\(directory.path)/s3.json", "-s3.localSocket=\(directory.path)/s3.sock",
        "-filer.localSocket=\(directory.path)/filer.sock",
    ]
    process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try process.run()
    let configuration = S3Configuration(
        endpoint: URL(string: "http://127.0.0.1:\(ports[6])")!, bucket: "bench", accessKey: access, secretKey: secret)
    let client = S3Client(configuration: configuration)
    for _ in 0..<240 {
        do {
            try await client.createBucket()
            try await client.putObject("probe", data: Data("ok".utf8))
            try await client.deleteObject("probe")
            return (process, ports, configuration)
        } catch {
            try await Task.sleep(for: .milliseconds(250))
        }
    }
    process.terminate()
    throw BlobError(.io, "weed did not become ready in 60 s")
}
