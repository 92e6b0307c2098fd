import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

func imageRecord(_ name: String, id: String? = nil, from workspace: String = "a", layers: [String]? = nil) -> ImageRecord {
    let id = id ?? "img-\(name)"
    return ImageRecord(
        name: name, id: id, createdAt: time(3), sizeBytes: 300 << 20, fromWorkspace: key(workspace), description: "with tools",
        layers: layers ?? [id])
}

extension StoreConformance {
    @Suite("images")
    struct Images {
        @Test(arguments: StoreFactory.all)
        func imagesAreKeptListedByNameAndDeleted(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                let base = imageRecord("base")
                let tools = ImageRecord(
                    name: "tools", id: "img-tools", createdAt: time(9), sizeBytes: 1, fromWorkspace: key("b"), description: nil,
                    layers: ["img-tools", "img-base"])
                try await store.createImage(tools)
                try await store.createImage(base)
                #expect(try await store.images().map(\.name) == ["base", "tools"])
                #expect(try await store.image(name: "tools") == tools, "every field, layers and a nil description included, round-trips")
                #expect(try await store.image(name: "absent") == nil)
                #expect(try await store.deleteImage(name: "tools"))
                #expect(try await !store.deleteImage(name: "tools"))
                #expect(try await store.images() == [base])
            }
        }

        @Test(arguments: StoreFactory.all)
        func aNameOrAnIdThatIsTakenConflicts(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await store.createImage(imageRecord("base"))
                await expectStoreError(.conflict) { try await store.createImage(imageRecord("base", id: "img-other")) }
                await expectStoreError(.conflict) { try await store.createImage(imageRecord("other", id: "img-base")) }
                #expect(try await store.images().count == 1)
            }
        }

        @Test(arguments: StoreFactory.all)
        func theWorkspacesAndImagesThatUseAnImageAreFound(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await store.createImage(imageRecord("base"))
                try await store.createImage(imageRecord("child", layers: ["img-child", "img-base"]))
                try await store.createImage(imageRecord("lone"))
                for (name, image) in [("w2", "base"), ("w1", "base"), ("w3", "child"), ("w4", nil)] {
                    var config = sampleConfig
                    config.image = image
                    _ = try await store.createWorkspace(workspaceRecord(name, config: config))
                }
                let base = try await store.imageUsers(name: "base", id: "img-base")
                #expect(base.workspaces == [key("w1"), key("w2")])
                #expect(base.images == ["child"])
                let child = try await store.imageUsers(name: "child", id: "img-child")
                #expect(child.workspaces == [key("w3")] && child.images.isEmpty)
                let lone = try await store.imageUsers(name: "lone", id: "img-lone")
                #expect(lone.workspaces.isEmpty && lone.images.isEmpty)
                #expect(try await store.image(name: "w1") == nil, "images and workspaces do not share names")
            }
        }
    }
}
