import AgentBox
import AgentBoxAPI
import Foundation
import Hummingbird

/// The image routes: freeze a workspace as an image, list, inspect and delete images. Workspaces are made from one by
/// `PUT /v1/workspaces/{key}` with `image`.
struct ImageController {
    let manager: WorkspaceManager

    func addRoutes(to registry: APIRouteRegistry) {
        let manager = manager
        let name = APIOperation.Parameter(
            name: "name", location: .path, schema: ["type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"], description: "The image's name.",
            required: true)
        registry.add(
            APIOperation(
                method: .post, path: "/v1/images", operationID: "createImage",
                summary: "Freeze a workspace's system layer and files as a read-only image (never boots it)", tag: "images",
                requestBody: Schema.json("CreateImageRequest"),
                replies: [
                    .init(status: 201, description: "Created", body: Schema.json("Image")),
                    .init(status: 404, description: "No such workspace", body: Schema.problem),
                    .init(status: 409, description: "An image has that name already", body: Schema.problem),
                ] + Schema.problemReplies)
        ) { request, context in
            let body = try await request.decode(as: CreateImageRequest.self, context: context)
            return EditedResponse(status: .created, response: try await manager.createImage(body))
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/images", operationID: "listImages", summary: "Every image, by name", tag: "images",
                replies: [.init(status: 200, description: "The images", body: Schema.json("ImageList"))] + Schema.problemReplies)
        ) { _, _ in
            try await manager.images()
        }
        registry.add(
            APIOperation(
                method: .get, path: "/v1/images/{name}", operationID: "getImage", summary: "One image", tag: "images",
                parameters: [name],
                replies: [.init(status: 200, description: "The image", body: Schema.json("Image")), Schema.notFound] + Schema.problemReplies)
        ) { _, context in
            try await manager.image(name: context.pathParameter("name"))
        }
        registry.add(
            APIOperation(
                method: .delete, path: "/v1/images/{name}", operationID: "deleteImage",
                summary: "Delete an image (refused while a workspace or another image uses it)", tag: "images", parameters: [name],
                replies: [
                    .init(status: 204, description: "Deleted"), Schema.notFound,
                    .init(status: 409, description: "A workspace or an image uses it", body: Schema.problem),
                ] + Schema.problemReplies)
        ) { _, context in
            try await manager.deleteImage(name: context.pathParameter("name"))
            return HTTPResponse.Status.noContent
        }
    }
}

extension Image: ResponseEncodable {}
extension ImageList: ResponseEncodable {}
