import AgentBoxAPI
import AgentBoxClient
import Foundation
import Testing

/// Prompts with attachments, with the mock agent in a real sandbox: an image and a workspace file reach an agent that
/// takes them (the file embedded), a text-only agent gets the file as a link and refuses the image with a 400, the
/// transcript keeps an image's digest rather than its bytes, and malformed blocks are 400s.
@Suite("Prompt attachments", .enabled(if: canSandbox, "needs bubblewrap and root"), .timeLimit(.minutes(3)))
struct SessionAttachmentsEndToEndTests {
    @Test func imagesAndFilesReachTheAgentsThatTakeThem() async throws {
        try await withTemporaryDirectory { data in
            let server = try await ServerProcess.start(dataDirectory: data, extraArguments: ["--agent", "plain=/.agentbox/bin/mock-agent --text-only"])
            let client = AgentBoxClient(endpoint: server.endpoint, token: server.token)
            _ = try await client.putWorkspace("att")
            _ = try await client.exec("att", command: "printf 'remember the milk' > /workspace/notes.txt")
            let png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + [UInt8](repeating: 7, count: 600_000))
            let content: [PromptContent] = [.text("look at these"), .image(png, mimeType: "image/png"), .file("notes.txt")]

            let mock = try await client.createSession("att", SessionCreateRequest(agent: "mock")).id
            let before = try await client.session("att", mock).lastEventSeq
            try await client.startPrompt("att", mock, PromptRequest(content: content))
            var events: [SessionEvent] = []
            for try await event in try await client.sessionEvents("att", mock, after: before) {
                events.append(event)
                if event.type == "turn_end" { break }
            }
            let said = events.filter { $0.type == "agent_message_chunk" }.compactMap { $0.payload["update"]?["content"]?["text"]?.stringValue }.joined()
            #expect(said.contains("image: image/png, \(png.count) bytes"), "\(said)")
            #expect(said.contains("file: file:///workspace/notes.txt, 17 bytes: remember the milk"), "\(said)")
            // The transcript keeps the image's size and digest, not its bytes.
            let prompt = try #require(events.first { $0.type == "prompt" })
            guard case .array(let blocks)? = prompt.payload["prompt"], blocks.count == 3 else {
                Issue.record("the prompt event: \(prompt.payload)")
                return
            }
            let image: JSONValue? = blocks[1]
            #expect(image?["bytes"] == .number(Double(png.count)) && image?["sha256"]?.stringValue?.count == 64 && image?["data"] == nil)

            // A text-only agent: the file as a link; an image is refused before the turn starts.
            let plain = try await client.createSession("att", SessionCreateRequest(agent: "plain")).id
            let linked = try await promptAndFollow(client, "att", plain, "")  // warm the agent (an empty text is fine)
            #expect(linked.last?.type == "turn_end")
            let beforeLink = try await client.session("att", plain).lastEventSeq
            try await client.startPrompt("att", plain, PromptRequest(content: [.text("read"), .file("/workspace/notes.txt")]))
            var linkEvents: [SessionEvent] = []
            for try await event in try await client.sessionEvents("att", plain, after: beforeLink) {
                linkEvents.append(event)
                if event.type == "turn_end" { break }
            }
            #expect(linkEvents.contains { $0.payload["update"]?["content"]?["text"]?.stringValue?.contains("link: file:///workspace/notes.txt") == true })
            let refused = await #expect(throws: AgentBoxClientError.self) {
                try await client.startPrompt("att", plain, PromptRequest(content: [.text("see"), .image(png, mimeType: "image/png")]))
            }
            #expect(refused?.status == 400 && refused?.problem.detail.contains("does not take images") == true, "\(String(describing: refused))")
            #expect(try await client.session("att", plain).status == .idle, "a refused prompt starts no turn")

            // Malformed blocks.
            for bad in [
                PromptContent(type: "image", mimeType: "image/png", data: "not base64!"), PromptContent(type: "image", mimeType: "text/html", data: "aGk="),
                PromptContent(type: "file"), PromptContent(type: "file", path: "../../etc/passwd"), PromptContent(type: "video", text: "x"),
            ] {
                let error = await #expect(throws: AgentBoxClientError.self) { try await client.startPrompt("att", mock, PromptRequest(content: [bad])) }
                #expect(error.map { (400...403).contains($0.status) } == true, "\(bad): \(String(describing: error))")
            }
            let missing = await #expect(throws: AgentBoxClientError.self) { try await client.startPrompt("att", mock, PromptRequest(content: [.file("nope.txt")])) }
            #expect(missing?.status == 404)
            await server.stop()
        }
    }
}
