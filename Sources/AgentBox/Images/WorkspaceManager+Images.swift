import AgentBoxAPI
import AgentBoxSandbox
import AgentBoxStore
import Foundation
import Logging
import NIOPosix

/// Images: a workspace's system layer and files, frozen read-only, that new workspaces start from.
///
/// An image is a snapshot of the workspace's subvolume in the disk pool (`pool/images/<id>`; without a pool, a copy
/// in `<data-dir>/images/<id>`), whose ids are then made canonical (the ids as seen inside a workspace), so that any
/// workspace's range can map them. A workspace made from it stacks the image's system layer (`system/usr/upper`,
/// and `etc`, `var`) under its own as read-only, idmapped lower layers: creating it copies none of those bytes. Its
/// files (`/workspace`, `/home`, `/opt`, `/srv`) are copied in, sharing their blocks where the file system can.
extension WorkspaceManager {
    /// The longest image description.
    public static let maxImageDescriptionBytes = 1024

    /// Freezes workspace `fromWorkspace` as image `name`. Does not boot it; a running workspace is taken as of one
    /// instant, like a snapshot.
    public func createImage(_ request: CreateImageRequest) async throws -> Image {
        try checkOpen()
        guard Image.isValidName(request.name) else {
            throw AgentBoxError(.invalidArgument, "image names are 1-64 of [a-z0-9._-], starting with a letter or digit; not '\(request.name)'")
        }
        if let description = request.description, description.utf8.count > Self.maxImageDescriptionBytes {
            throw AgentBoxError(.tooLarge, "an image description holds at most \(Self.maxImageDescriptionBytes) bytes")
        }
        if try await store.image(name: request.name) != nil {
            throw AgentBoxError(.conflict, "there is an image called '\(request.name)' already")
        }
        let runtime = try await runtime(for: request.fromWorkspace)
        _ = try runtime.files()  // its directories exist from here on, even before a first boot
        var layers: [String] = []
        if let parentName = runtime.config.image {
            guard let parent = try await store.image(name: parentName) else {
                throw AgentBoxError(.conflict, "the image '\(parentName)' that workspace '\(request.fromWorkspace)' was made from is gone")
            }
            layers = parent.layers
        }
        let id = RandomID.make(prefix: "img-", length: 20)
        let directory = imageDirectory(id: id)
        let pool = diskPool
        let (workspaceID, source) = (runtime.id, runtime.directory)
        let canonical = configuration.sandbox?.runsAsWorkspaceUID == true
            ? OwnershipWalk(from: .workspaceRanges(base: configuration.sandboxUIDBase), to: .canonical) : nil
        let started = ContinuousClock.now
        let sizeBytes = try await NIOThreadPool.singleton.runIfActive { () throws -> Int64 in
            do {
                if let pool, pool.holdsWorkspace(id: workspaceID) {
                    try pool.snapshot(workspace: workspaceID, asImage: id)
                } else {
                    try FileManager.default.createDirectory(at: directory.deletingLastPathComponent(), withIntermediateDirectories: true)
                    _ = try FileTreeCopy(ownership: nil).copy(from: source.path, to: directory.path)
                }
                try canonical?.apply(to: directory.path)
                chmod(directory.path, 0o711)
                return Self.treeBytes(directory.path)
            } catch {
                try? Self.removeImageFiles(pool: pool, id: id, directory: directory)
                throw error
            }
        }
        let record = ImageRecord(
            name: request.name, id: id, createdAt: Date(), sizeBytes: sizeBytes, fromWorkspace: request.fromWorkspace,
            description: request.description, layers: [id] + layers)
        do {
            if let checkpoints = configuration.checkpoints, cluster != nil {
                // In a cluster, any node may boot a workspace made from it: the blob store keeps a copy.
                let figures = try await checkpoints.storeImage(id: id, root: directory)
                logger.info("image stored in the blob store", metadata: ["image": "\(request.name)", "files": "\(figures.files)", "uploaded": "\(figures.uploadedObjects)"])
            }
            try await store.createImage(record)
        } catch {
            try? await NIOThreadPool.singleton.runIfActive { try Self.removeImageFiles(pool: pool, id: id, directory: directory) }
            if let checkpoints = configuration.checkpoints, cluster != nil { try? await checkpoints.deleteImage(id: id) }
            if let error = error as? StoreError, error.code == .conflict {
                throw AgentBoxError(.conflict, "there is an image called '\(request.name)' already")
            }
            throw error
        }
        logger.info(
            "image created",
            metadata: ["image": "\(request.name)", "workspace.key": "\(request.fromWorkspace)", "bytes": "\(sizeBytes)",
                       "ms": "\((ContinuousClock.now - started).milliseconds)"])
        return record.image
    }

    /// Every image, by name.
    public func images() async throws -> ImageList {
        try checkOpen()
        return ImageList(items: try await store.images().map(\.image))
    }

    /// The image called `name`.
    public func image(name: String) async throws -> Image {
        try checkOpen()
        return try await imageRecord(name).image
    }

    /// Deletes image `name`; refused (conflict) while a workspace or another image uses it.
    public func deleteImage(name: String) async throws {
        try checkOpen()
        let record = try await imageRecord(name)
        let users = try await store.imageUsers(name: name, id: record.id)
        if !users.workspaces.isEmpty || !users.images.isEmpty {
            let workspaces = users.workspaces.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            let images = users.images.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            let what = [
                users.workspaces.isEmpty ? nil : "workspaces \(workspaces)\(users.workspaces.count > 5 ? "..." : "")",
                users.images.isEmpty ? nil : "images \(images)\(users.images.count > 5 ? "..." : "")",
            ].compactMap { $0 }.joined(separator: " and ")
            throw AgentBoxError(.conflict, "image '\(name)' is in use by \(what); delete them first")
        }
        guard try await store.deleteImage(name: name) else { throw AgentBoxError(.notFound, "there is no image called '\(name)'") }
        let (pool, directory, id) = (diskPool, imageDirectory(id: record.id), record.id)
        if FileManager.default.fileExists(atPath: directory.path) {
            try await NIOThreadPool.singleton.runIfActive { try Self.removeImageFiles(pool: pool, id: id, directory: directory) }
        }
        if let checkpoints = configuration.checkpoints, cluster != nil {
            do { try await checkpoints.deleteImage(id: id) } catch {
                logger.warning("could not delete an image from the blob store", metadata: ["image": "\(name)", "error": "\(error)"])
            }
        }
        logger.info("image deleted", metadata: ["image": "\(name)"])
    }

    func imageRecord(_ name: String) async throws -> ImageRecord {
        guard Image.isValidName(name), let record = try await store.image(name: name) else {
            throw AgentBoxError(.notFound, "there is no image called '\(name)'")
        }
        return record
    }

    /// Where image `id`'s files are.
    func imageDirectory(id: String) -> URL {
        if let pool = diskPool { return pool.imageVolume(id: id) }
        return configuration.dataDirectory.appendingPathComponent("images", isDirectory: true).appendingPathComponent(id, isDirectory: true)
    }

    /// The system layers a workspace made from image `name` stacks under its own, top first.
    func imageLayers(_ name: String?) async throws -> [URL] {
        guard let name else { return [] }
        let layers = try await imageRecord(name).layers
        for id in layers { try await ensureImageHere(id: id) }
        return layers.map { imageDirectory(id: $0).appendingPathComponent("system", isDirectory: true) }
    }

    /// In a cluster, fetches image `id` from the blob store when another node made it (once: concurrent callers
    /// wait for the same fetch). Restored under a temporary name and renamed, so a half-fetched image is never used.
    func ensureImageHere(id: String) async throws {
        let directory = imageDirectory(id: id)
        guard let checkpoints = configuration.checkpoints, cluster != nil, !FileManager.default.fileExists(atPath: directory.path) else { return }
        try await imageFetches.run(id) {
            guard !FileManager.default.fileExists(atPath: directory.path) else { return }
            let started = ContinuousClock.now
            let staging = ".partial-\(id)-\(RandomID.make(prefix: "", length: 8))"
            let pool = self.diskPool
            let stagingURL = directory.deletingLastPathComponent().appendingPathComponent(staging, isDirectory: true)
            try await NIOThreadPool.singleton.runIfActive {
                if let pool { try pool.createImageVolume(named: staging) } else {
                    try FileManager.default.createDirectory(at: stagingURL, withIntermediateDirectories: true)
                }
            }
            do {
                guard try await checkpoints.restoreImage(id: id, into: stagingURL) else {
                    throw AgentBoxError(.notFound, "image layer '\(id)' is neither on this node nor in the blob store")
                }
                try await NIOThreadPool.singleton.runIfActive {
                    chmod(stagingURL.path, 0o711)
                    if let pool { try pool.renameImageVolume(staging, to: id) } else if rename(stagingURL.path, directory.path) != 0 {
                        throw AgentBoxError(.internalError, "could not put image layer '\(id)' in place (errno \(errno))")
                    }
                }
            } catch {
                try? await NIOThreadPool.singleton.runIfActive {
                    if let pool { try pool.deleteImage(id: staging) } else { try FileTreeCopy.remove(stagingURL.path) }
                }
                throw error
            }
            self.logger.info("image fetched from the blob store", metadata: ["image.id": "\(id)", "ms": "\((ContinuousClock.now - started).milliseconds)"])
        }
    }

    /// Copies image `name`'s files (not its system layer, which is stacked at boot) into the new workspace `record`,
    /// handed to its ids.
    func placeImageFiles(_ name: String, into record: WorkspaceRecord, directory: URL) async throws {
        let id = try await imageRecord(name).id
        try await ensureImageHere(id: id)
        let image = imageDirectory(id: id)
        let ownership = configuration.sandbox?.runsAsWorkspaceUID == true
            ? OwnershipWalk(from: .canonical, to: .workspace(configuration.fileIDs(sandboxNumber: record.sandboxNumber))) : nil
        let root = configuration.sandbox?.runsAsWorkspaceUID == true ? configuration.fileIDs(sandboxNumber: record.sandboxNumber).start : nil
        try await NIOThreadPool.singleton.runIfActive {
            let copy = FileTreeCopy(ownership: ownership)
            for name in ["workspace", "home"] {
                let source = image.appendingPathComponent(name).path
                guard FileManager.default.fileExists(atPath: source) else { continue }
                rmdir(directory.appendingPathComponent(name).path)  // made empty by the creation
                _ = try copy.copy(from: source, to: directory.appendingPathComponent(name).path)
            }
            let system = directory.appendingPathComponent("system")
            if mkdir(system.path, 0o755) == 0, let root { chown(system.path, root, root) }
            for name in SystemLayer.plainDirectories {
                let source = image.appendingPathComponent("system").appendingPathComponent(name).path
                guard FileManager.default.fileExists(atPath: source) else { continue }
                _ = try copy.copy(from: source, to: system.appendingPathComponent(name).path)
            }
            // Every file copied in carries the ids of the workspace's files: no walk at its first boot.
            try self.configuration.markStorageIDs(in: directory)
        }
    }

    private static func removeImageFiles(pool: DiskPool?, id: String, directory: URL) throws {
        if let pool, FileManager.default.fileExists(atPath: pool.imageVolume(id: id).path) {
            try pool.deleteImage(id: id)
        } else {
            try FileTreeCopy.remove(directory.path)
        }
    }

    /// The bytes of the regular files under `path` (a walk that follows no symlink).
    static func treeBytes(_ path: String) -> Int64 {
        var total: Int64 = 0
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        while let name = walker.nextObject() as? String {
            var info = stat()
            if lstat(path + "/" + name, &info) == 0, info.st_mode & S_IFMT == S_IFREG { total += Int64(info.st_size) }
        }
        return total
    }
}
