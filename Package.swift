// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // A file uses only what it imports itself (no member visible through another file's import).
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "agentbox",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AgentBox", targets: ["AgentBox"]),
        .library(name: "AgentBoxAPI", targets: ["AgentBoxAPI"]),
        .library(name: "AgentBoxClient", targets: ["AgentBoxClient"]),
        .library(name: "AgentBoxServer", targets: ["AgentBoxServer"]),
        .library(name: "AgentBoxBlobs", targets: ["AgentBoxBlobs"]),
        .executable(name: "agentbox", targets: ["agentbox"]),
        // The helpers the server runs: found beside `agentbox`, or in `serve --helpers-dir`.
        .executable(name: "agentbox-sandbox-init", targets: ["agentbox-sandbox-init"]),
        .executable(name: "agentbox-mock-agent", targets: ["agentbox-mock-agent"]),
        .executable(name: "agentbox-acp-adapter", targets: ["agentbox-acp-adapter"]),
        .executable(name: "agentbox-tool", targets: ["agentbox-tool"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk.git", from: "0.12.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Wire types of the HTTP API, shared by server, client and CLI. Foundation only.
        .target(name: "AgentBoxAPI", swiftSettings: swiftSettings),
        // Persistence: the Store protocol and its implementations: SQLite (GRDB), embedded; Postgres (postgres-nio),
        // single node or shared by a cluster's nodes.
        .target(
            name: "AgentBoxStore",
            dependencies: [
                "AgentBoxAPI",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Descriptor passing for the sandbox's control socket (CMSG macros are not visible to Swift).
        .target(name: "CAgentBoxSandbox"),
        // The desktop's screenshot path: reading an X11 GetImage reply and encoding PNG with zlib (optimised even in
        // debug builds: a 1280x800 screenshot is 4 MB of pixels).
        .target(name: "CAgentBoxDesktop", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("z")]),
        // The first process of every Linux sandbox: spawns, signals and reaps the workspace's processes.
        // Linked with --as-needed: it uses only libc, and must not need the Swift runtime, which sandboxes do not see.
        // The no-op Swift runtime entry points that keep the runtime out of the C helpers below.
        .target(name: "CNoSwiftRuntime"),
        .executableTarget(
            name: "agentbox-sandbox-init", dependencies: ["CAgentBoxSandbox", "CNoSwiftRuntime"],
            linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // The command behind `agentbox-{toolkit}` inside workspaces: a relay to the workspace's tools socket. C, static.
        .executableTarget(name: "agentbox-tool", dependencies: ["CNoSwiftRuntime"], linkerSettings: [.unsafeFlags(["-static-executable"])]),
        // Sandboxes: the Sandbox protocol, the bubblewrap + cgroups backend, the unsandboxed backend.
        .target(
            name: "AgentBoxSandbox",
            dependencies: [
                "CAgentBoxSandbox",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The mock ACP agent, linked statically so that it runs inside sandboxes (`agentbox mock-agent` is the same
        // agent in the main binary, for hosts).
        .executableTarget(
            name: "agentbox-mock-agent", dependencies: ["AgentBoxACP"], swiftSettings: swiftSettings,
            linkerSettings: [
                .unsafeFlags([
                    "-static-stdlib", "-Xlinker", "--start-group", "-Xlinker", "-lFoundation", "-Xlinker", "-lFoundationEssentials", "-Xlinker", "-lFoundationInternationalization", "-Xlinker", "-lCoreFoundation", "-Xlinker", "-l_FoundationICU", "-Xlinker", "-l_FoundationCShims", "-Xlinker", "-l_FoundationCollections", "-Xlinker", "-lswiftSynchronization", "-Xlinker", "-lswiftDispatch", "-Xlinker", "-ldispatch", "-Xlinker", "-lBlocksRuntime", "-Xlinker", "-lswift_Concurrency", "-Xlinker", "-lswiftCore", "-Xlinker", "-lstdc++", "-Xlinker", "-lm", "-Xlinker", "--end-group"
                ])
            ]),
        // The ACP adapters for Claude Code (stream-json) and Codex (app-server), linked statically like the mock, run inside sandboxes.
        .executableTarget(
            name: "agentbox-acp-adapter", dependencies: ["AgentBoxACP"], swiftSettings: swiftSettings,
            linkerSettings: [
                .unsafeFlags([
                    "-static-stdlib", "-Xlinker", "--start-group", "-Xlinker", "-lFoundation", "-Xlinker", "-lFoundationEssentials", "-Xlinker", "-lFoundationInternationalization", "-Xlinker", "-lCoreFoundation", "-Xlinker", "-l_FoundationICU", "-Xlinker", "-l_FoundationCShims", "-Xlinker", "-l_FoundationCollections", "-Xlinker", "-lswiftSynchronization", "-Xlinker", "-lswiftDispatch", "-Xlinker", "-ldispatch", "-Xlinker", "-lBlocksRuntime", "-Xlinker", "-lswift_Concurrency", "-Xlinker", "-lswiftCore", "-Xlinker", "-lstdc++", "-Xlinker", "-lm", "-Xlinker", "--end-group"
                ])
            ]),
        // Measurements that need no server (see BENCHMARKS.md).
        .executableTarget(
            name: "agentbox-bench",
            dependencies: [
                "AgentBox", "AgentBoxStore", "AgentBoxAPI", "AgentBoxBlobs", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ], swiftSettings: swiftSettings),
        // The Agent Client Protocol: JSON-RPC 2.0 over lines, the ACP messages, and the deterministic mock agent.
        .target(
            name: "AgentBoxACP",
            dependencies: [
                "AgentBoxAPI", .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ], swiftSettings: swiftSettings),
        // Blobs in S3-compatible object stores (a SigV4 client of its own) or a local directory, and incremental file
        // checkpoints of a tree into them (docs/BLOBS.md). Depends on no other AgentBox module.
        .target(
            name: "AgentBoxBlobs",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The embeddable library: workspaces, their lifecycle and events. No HTTP.
        .target(
            name: "AgentBox",
            dependencies: [
                "AgentBoxAPI",
                "AgentBoxACP",
                "AgentBoxStore",
                "AgentBoxBlobs",
                "AgentBoxSandbox",
                "CAgentBoxSandbox",
                "CAgentBoxDesktop",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP transport over the library.
        .target(
            name: "AgentBoxServer",
            dependencies: [
                "AgentBox",
                "AgentBoxStore",
                "AgentBoxAPI",
                "AgentBoxMCP",
                "AgentBoxE2B",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The Inspector's static files, copied beside the binary (agentbox_AgentBoxServer.resources/Inspector).
            resources: [.copy("Inspector")],
            swiftSettings: swiftSettings
        ),
        // E2B's API (control plane, envd's Connect services, the code interpreter) over the library, at the server's root
        // path, so that E2B's own SDKs drive AgentBox workspaces (docs/E2B.md).
        .target(
            name: "AgentBoxE2B",
            dependencies: [
                "AgentBox",
                "AgentBoxAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // `agentbox dev model-server`: Anthropic's and OpenAI's APIs answering from a script, for offline agents.
        .target(
            name: "AgentBoxModelServer",
            dependencies: [
                "AgentBoxAPI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // AgentBox as an MCP server: the tools (exec, files, processes) over any `WorkspaceOperations` (the library's
        // WorkspaceManager on the server, the client in `agentbox mcp`), and the bounded sessions of `POST /v1/mcp`.
        // A module of its own so that the library, which embedders link, does not carry the MCP SDK.
        .target(
            name: "AgentBoxMCP",
            dependencies: [
                "AgentBox",
                "AgentBoxAPI",
                "AgentBoxStore",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The typed Swift client.
        .target(
            name: "AgentBoxClient",
            dependencies: [
                "AgentBoxAPI",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command-line interface: `agentbox serve` and the client commands. The client commands talk to a
        // server only through AgentBoxClient (no HTTP or WebSocket client of their own).
        .executableTarget(
            name: "agentbox",
            dependencies: [
                "AgentBoxACP",
                "AgentBox",
                "AgentBoxServer",
                "AgentBoxClient",
                "AgentBoxAPI",
                "AgentBoxModelServer",
                "AgentBoxStore",
                "AgentBoxBlobs",
                "AgentBoxMCP",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AgentBoxStoreTests",
            dependencies: [
                "AgentBoxStore", "AgentBoxAPI", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(name: "AgentBoxSandboxTests", dependencies: ["AgentBox", "AgentBoxSandbox", "AgentBoxStore", "AgentBoxAPI", "ChildProcessSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "AgentBoxTests",
            dependencies: [
                "AgentBox", "AgentBoxStore", "AgentBoxAPI", "AgentBoxSandbox", "ChildProcessSupport", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "AgentBoxServerTests",
            dependencies: [
                "AgentBoxServer", "AgentBox", "AgentBoxAPI", "AgentBoxSandbox", "AgentBoxModelServer", "AgentBoxStore", "AgentBoxE2B",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AgentBoxMCPTests",
            dependencies: ["AgentBoxMCP", "AgentBoxAPI", .product(name: "MCP", package: "swift-sdk")],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "AgentBoxBlobsTests", dependencies: ["AgentBoxBlobs", "WeedSupport", "ChildProcessSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "AgentBoxACPTests",
            dependencies: ["AgentBoxACP", "AgentBoxAPI", "ChildProcessSupport", .product(name: "Subprocess", package: "swift-subprocess")],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "AgentBoxClient", "AgentBoxAPI", "AgentBoxSandbox", "agentbox", "WeedSupport", "ChildProcessSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        // How the tests start SeaweedFS (the blob tests' server and the cluster test's).
        .target(name: "WeedSupport", path: "Tests/WeedSupport", swiftSettings: swiftSettings),
        // How the tests start host programs (not with Foundation's Process: see ChildProcess).
        .target(name: "ChildProcessSupport", dependencies: ["AgentBoxSandbox"], path: "Tests/ChildProcessSupport", swiftSettings: swiftSettings),
    ]
)
