import AgentBox
import Foundation
import Testing

@Suite("Finding credentials")
struct CredentialDiscoveryTests {
    @Test func theEnvironmentWinsThenTheAgentsFiles() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("agentbox-home-\(UUID())")
        defer { try? FileManager.default.removeItem(at: home) }
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".claude"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".codex"), withIntermediateDirectories: true)
        try #"{"claudeAiOauth":{"accessToken":"oauth-token","refreshToken":"r"}}"#.write(
            to: home.appendingPathComponent(".claude/.credentials.json"), atomically: true, encoding: .utf8)
        try #"{"primaryApiKey":"sk-ant-file"}"#.write(to: home.appendingPathComponent(".claude.json"), atomically: true, encoding: .utf8)
        try #"{"OPENAI_API_KEY":"sk-openai-file"}"#.write(to: home.appendingPathComponent(".codex/auth.json"), atomically: true, encoding: .utf8)

        let found = CredentialDiscovery.find(environment: ["ANTHROPIC_API_KEY": "sk-ant-env", "PATH": "/bin"], home: home)
        #expect(found.map(\.name) == ["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "OPENAI_API_KEY"])
        #expect(found.first { $0.name == "ANTHROPIC_API_KEY" }?.source == "environment", "the environment wins over ~/.claude.json")
        #expect(found.first { $0.name == "CLAUDE_CODE_OAUTH_TOKEN" }?.value == "oauth-token")
        #expect(found.first { $0.name == "OPENAI_API_KEY" }?.source == "~/.codex/auth.json")
        #expect(CredentialDiscovery.find(environment: [:], home: home.appendingPathComponent("nobody")).isEmpty)
        #expect(CredentialDiscovery.shellQuoted("a'b") == #"'a'\''b'"#)
    }
}
