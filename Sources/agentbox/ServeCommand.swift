import AgentBox
import AgentBoxAPI
import AgentBoxBlobs
import AgentBoxMCP
import AgentBoxSandbox
import AgentBoxServer
import AgentBoxStore
import ArgumentParser
import Foundation
import Logging

/// `agentbox serve`: runs the AgentBox server until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the AgentBox server.",
        discussion: """
            Examples:
              agentbox serve              # 127.0.0.1:2468, no token on loopback
              agentbox serve --host 0.0.0.0 --token s3cret --idle-grace 5m
            """)

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0 picks a free one).")
    var port = 2468

    @Option(help: "Where the database and workspaces live (default: $AGENTBOX_DATA_DIR, $XDG_DATA_HOME/agentbox, ~/.local/share/agentbox).")
    var dataDir: String?

    @Option(help: "The bearer token clients must present (default: $AGENTBOX_TOKEN; none on loopback).")
    var token: String?

    @Flag(help: "Allow listening on a non-loopback address without a token.")
    var noToken = false

    @Option(help: "How long an idle workspace stays awake: 500ms, 60s, 5m.")
    var idleGrace = "60s"

    @Option(help: "How long a sleeping workspace nobody listens to stays in memory (its recent events replayable with Last-Event-ID); then it costs nothing until its next action: 30s, 5m.")
    var sleepingRetention = "30s"

    @Option(help: "The directory of the helper executables (agentbox-sandbox-init, agentbox-mock-agent, agentbox-acp-adapter). Default: $AGENTBOX_SANDBOX_INIT's directory, else beside this executable.")
    var helpersDir: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @Option(help: "How workspaces are isolated: linux (bubblewrap namespaces + cgroups) or unsandboxed (none; development only).")
    var sandbox = "linux"

    @Option(
        help: "How many sandboxes the server starts ahead, in the background, so that a workspace's create or wake binds one instead of starting its own (linux sandbox as root; 0: none, every boot starts its own).")
    var sandboxPool = 4

    @Option(
        help: "What the sandbox pool keeps: sandboxes (whole sandboxes started ahead, bound to a workspace at its boot; needs cgroups and idmapped mounts, else namespaces) or namespaces (network and IPC namespaces only; bubblewrap starts each sandbox).")
    var sandboxPoolKind = "sandboxes"

    @Option(
        help: "How many sleeping workspaces keep their sandbox, parked (no process in it, its /tmp, /run and root as built), so that their next wake only starts processes in it (with --sandbox-pool-kind sandboxes; 0: none, every wake binds a new sandbox). Each costs two idle processes and the sandbox's kernel objects.")
    var parkedSandboxes = 64

    @Option(
        help: "How many blank workspaces the server keeps ready for creates: storage made, ids reserved and, with parked sandboxes, a sandbox booted and parked, so that a create takes one in one database write and its first action wakes it like a sleeping workspace (creates with an image, mounts or toolkits make their own). Kept across restarts; not used in a cluster (0: none).")
    var blankWorkspaces = 4

    @Option(
        help: "The most workspaces awake at once: auto (as many as the open file limit leaves room for, about 3 descriptors each, and at most one per 4 MiB of memory) or a number. A wake past it puts the workspace idle longest to sleep early, or, when every awake one is in use, is refused with 503.")
    var maxAwake = "auto"

    @Option(help: "Default memory limit per workspace, in MiB.")
    var memoryMb = 2048

    @Option(help: "Default CPU limit per workspace, in percent of one core.")
    var cpuPercent = 100

    @Option(help: "Default process limit per workspace.")
    var pids = 512

    @Option(help: "Default disk limit per workspace, in MiB (0: none); enforced in the disk pool.")
    var diskMb = 10240

    @Option(help: "Where workspaces' files live: auto (a btrfs pool at DATA-DIR/pool that enforces diskMb; needs root) or none (plain directories; diskMb not enforced).")
    var diskPool = "auto"

    @Option(help: "The size of a new disk pool image, such as 64G or 512M (default: the smaller of 64 GiB and half the free space).")
    var diskPoolSize: String?

    @Option(
        help: "When the server runs as root, each workspace runs as root of its own user namespace over a range of 2,048 host ids, from this base up.")
    var sandboxUIDBase: UInt32 = 100_000_000

    @Option(name: .customLong("allow-host-mount"), help: "A host directory under which workspaces may mount host paths (repeatable).")
    var allowHostMount: [String] = []

    @Option(
        name: .customLong("egress-allow-private"),
        help: "A private or special address block (CIDR, or one address) that workspaces' egress may reach when their policy allows the target (repeatable). None by default.")
    var egressAllowPrivate: [String] = []

    @Option(help: "Output kept per stream of a spawned process, in bytes.")
    var outputBufferBytes = 1 << 20

    @Option(help: "Serve previews at {token}.DOMAIN too (point a wildcard DNS record *.DOMAIN at this server).")
    var previewDomain: String?

    @Option(help: "How long a preview URL works when its request names no expiry: 30m, 1h.")
    var previewTtl = "1h"

    @Option(help: "The longest a preview URL may work.")
    var previewMaxTtl = "24h"

    @Option(help: "How long a fetch or preview request waits for a workspace's port to accept before 502: 10s.")
    var portWait = "10s"

    @Option(help: "How long a client may take to send a request's head (also how long an idle keep-alive connection stays open), and to send more of its body; then its connection closes (slow clients, slowloris). Never while the server answers: 60s.")
    var clientTimeout = "60s"

    @Option(help: "How agents' permission requests are answered unless a session says otherwise: KIND=allow|ask|reject, comma-separated, * for the rest.")
    var permissions = "read=allow,search=allow,think=allow,*=ask"

    @Option(help: "How long a permission question waits for a reply before it is rejected: 5m.")
    var permissionTimeout = "5m"

    @Option(help: "How long the agent of a cancelled turn has to end it before it is stopped: 10s.")
    var cancelGrace = "10s"

    @Option(name: .customLong("question-timeout"), help: "How long an agent's question waits for its answer before it is answered cancel.")
    var questionTimeout = "10m"

    @Option(name: .customLong("agent-url"), help: "Where to download an agent's binary when PATH, npm and PyPI do not have it: ID=URL (repeatable).")
    var agentURLs: [String] = []

    @Flag(help: "Refuse sessions of agents that are not installed (agentbox agents install), instead of installing on first use.")
    var requirePreinstall = false

    @Option(name: .customLong("agent"), help: "An ACP agent run by command: ID=PROGRAM ARG... (repeatable), e.g. goose='goose acp'.")
    var agents: [String] = []

    @Option(
        name: .customLong("llm-upstream"),
        help: "Serve a provider at the LLM gateway (/llm/PROVIDER/...): anthropic=URL or openai=URL (repeatable; URL 'default' is the provider's own API). Its key: ANTHROPIC_API_KEY / OPENAI_API_KEY in this server's environment, or --llm-key-file.")
    var llmUpstreams: [String] = []

    @Option(help: "Ask this URL about bearer tokens the server does not know: POST {token, method, path, workspace?}; 200 {allow:true, role, workspaces, ttlSeconds?} admits (kept for ttlSeconds); anything else, or the hook down, refuses. See docs/API.md, Access.")
    var authHook: String?

    @Option(name: .customLong("cors-origin"), help: "Let pages of this origin call the API from a browser, e.g. https://app.example.com (repeatable; none by default).")
    var corsOrigins: [String] = []

    @Option(name: .customLong("package-index"), help: "The Python package index agent installs download wheels from (its JSON API; default https://pypi.org).")
    var packageIndex: String?

    @Option(name: .customLong("ui-dir"), help: "Serve the Inspector (/ui/) from this folder, live (for working on it); default: the files installed beside the binary.")
    var uiDirectory: String?

    @Option(help: "A file of the gateway's real keys, one per line: anthropic=KEY, openai=KEY (or ANTHROPIC_API_KEY=KEY, OPENAI_API_KEY=KEY).")
    var llmKeyFile: String?

    @Option(help: "Where records live: sqlite (in the data directory; the default) or postgres://USER[:PASSWORD]@HOST:PORT/DB, shared by the nodes of a cluster.")
    var store = "sqlite"

    @Option(help: "With --store postgres://…: this node's id in the cluster (unique, stable across restarts; [A-Za-z0-9._-]). Makes the server a cluster node.")
    var nodeId: String?

    @Option(help: "The URL at which the other nodes reach this one (default: http://HOST:PORT as listened on).")
    var advertise: String?

    @Option(help: "How long a workspace's lease lasts without renewal, in ms: a dead node's workspaces move after this.")
    var leaseMs = 10_000

    @Option(help: "An S3-compatible blob store for checkpoints of workspaces' files: s3://BUCKET?endpoint=http://HOST:PORT&region=R (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).")
    var blobs: String?

    @Option(help: "How often an awake workspace's files are checkpointed to --blobs, in ms (0: only on sleep, on snapshot and at shutdown).")
    var checkpointIntervalMs = 60_000

    func validate() throws {
        guard store == "sqlite" || store.hasPrefix("postgres://") || store.hasPrefix("postgresql://") else {
            throw ValidationError("--store must be sqlite or postgres://USER@HOST:PORT/DB, not '\(store)'")
        }
        if let nodeId {
            guard ClusterOptions.isValidNodeId(nodeId) else { throw ValidationError("--node-id must be 1-64 of A-Z a-z 0-9 . _ -, not '\(nodeId)'") }
            guard store != "sqlite" else { throw ValidationError("--node-id needs a shared store: --store postgres://…") }
        }
        if let advertise, URL(string: advertise)?.scheme?.hasPrefix("http") != true {
            throw ValidationError("--advertise must be an http(s) URL such as http://10.0.0.2:8080, not '\(advertise)'")
        }
        guard (1000...3_600_000).contains(leaseMs) else { throw ValidationError("--lease-ms must be 1000...3600000") }
        guard checkpointIntervalMs >= 0 else { throw ValidationError("--checkpoint-interval-ms must not be negative") }
        if blobs != nil, nodeId == nil { throw ValidationError("--blobs is for cluster nodes: give --node-id and --store postgres://… too") }
        guard Duration.parse(sleepingRetention) != nil else {
            throw ValidationError("--sleeping-retention must be a duration such as 30s or 5m, not '\(sleepingRetention)'")
        }
        guard ["sandboxes", "namespaces"].contains(sandboxPoolKind) else {
            throw ValidationError("--sandbox-pool-kind must be sandboxes or namespaces, not \(sandboxPoolKind)")
        }
        guard parkedSandboxes >= 0, parkedSandboxes <= 4096 else {
            throw ValidationError("--parked-sandboxes must be between 0 and 4096, not \(parkedSandboxes)")
        }
        guard blankWorkspaces >= 0, blankWorkspaces <= 256 else {
            throw ValidationError("--blank-workspaces must be between 0 and 256, not \(blankWorkspaces)")
        }
        guard maxAwake == "auto" || (Int(maxAwake).map { $0 >= 1 } ?? false) else {
            throw ValidationError("--max-awake must be auto or a number of workspaces of at least 1, not '\(maxAwake)'")
        }
        guard sandboxPool >= 0, sandboxPool <= 1024 else {
            throw ValidationError("--sandbox-pool must be between 0 and 1024, not \(sandboxPool)")
        }
        guard Duration.parse(idleGrace) != nil else {
            throw ValidationError("--idle-grace must be a duration such as 500ms, 60s or 5m, not '\(idleGrace)'")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard SandboxKind(rawValue: sandbox) != nil else {
            throw ValidationError("--sandbox must be one of \(SandboxKind.allCases.map(\.rawValue).joined(separator: ", ")), not '\(sandbox)'")
        }
        if let problem = WorkspaceLimits(memoryMb: memoryMb, cpuPercent: cpuPercent, pids: pids, diskMb: diskMb == 0 ? nil : diskMb)
            .validationProblem()
        {
            throw ValidationError(problem.replacingOccurrences(of: "limits.", with: "--"))
        }
        guard ["auto", "none"].contains(diskPool) else { throw ValidationError("--disk-pool must be auto or none, not '\(diskPool)'") }
        if let diskPoolSize, Self.parseSize(diskPoolSize) == nil {
            throw ValidationError("--disk-pool-size must be a size such as 64G or 512M, not '\(diskPoolSize)'")
        }
        for (flag, value) in [("--preview-ttl", previewTtl), ("--preview-max-ttl", previewMaxTtl), ("--port-wait", portWait), ("--client-timeout", clientTimeout)] {
            guard let duration = Duration.parse(value), duration > .zero else {
                throw ValidationError("\(flag) must be a positive duration such as 90s, 30m or 1h, not '\(value)'")
            }
        }
        for (flag, value) in [("--permission-timeout", permissionTimeout), ("--cancel-grace", cancelGrace), ("--question-timeout", questionTimeout)] {
            guard let duration = Duration.parse(value), duration > .zero else {
                throw ValidationError("\(flag) must be a positive duration such as 30s or 5m, not '\(value)'")
            }
        }
        do { _ = try PermissionPolicy(compact: permissions) } catch { throw ValidationError("--permissions: \(error)") }
        _ = try commandAgents()
        guard Duration.parse(previewTtl)! <= Duration.parse(previewMaxTtl)! else {
            throw ValidationError("--preview-ttl must not be longer than --preview-max-ttl")
        }
        for text in egressAllowPrivate where IPNetwork(text) == nil {
            throw ValidationError("--egress-allow-private must be ADDRESS/PREFIX with no host bits set (10.1.0.0/16, fd00::/8) or one address, not '\(text)'")
        }
        guard outputBufferBytes >= 0 else { throw ValidationError("--output-buffer-bytes must not be negative") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        if noToken, token != nil { throw ValidationError("--token and --no-token exclude each other") }
    }

    /// Bytes from `512M`, `64G`, `1T` (binary units) or a bare number of bytes.
    static func parseSize(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = text.uppercased()
        if digits.hasSuffix("IB") { digits.removeLast(2) } else if digits.hasSuffix("B") { digits.removeLast() }
        var scale: Int64 = 1
        if let last = digits.last, let unit = units[last] {
            scale = unit
            digits.removeLast()
        }
        guard let value = Int64(digits), value > 0 else { return nil }
        let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? nil : bytes
    }

    /// The `--agent ID=COMMAND` agents. The command is split at spaces (no quoting).
    func commandAgents() throws -> [AgentDefinition] {
        try agents.map { text in
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            let command = parts.count == 2 ? parts[1].split(separator: " ").map(String.init) : []
            guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }), !command.isEmpty else {
                throw ValidationError("--agent must be ID=PROGRAM [ARG...], not '\(text)'")
            }
            return AgentDefinition(id: parts[0], name: parts[0], command: command)
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "agentbox")
        // Every connection, SSE subscriber and awake workspace holds descriptors: the limit goes as high as this
        // process may take it (root: the kernel's most), and sandboxes get the one it started with.
        let descriptors = DescriptorLimit.raise()
        let descriptorLimit = descriptors.limit
        let dataDirectory = dataDir.map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? AgentBoxConfiguration.defaultDataDirectory()
        var configuration = AgentBoxConfiguration(
            dataDirectory: dataDirectory, idleGrace: Duration.parse(idleGrace)!,
            defaultLimits: WorkspaceLimits(memoryMb: memoryMb, cpuPercent: cpuPercent, pids: pids, diskMb: diskMb == 0 ? nil : diskMb))
        if diskPool == "auto" {
            configuration.diskPool = .automatic(sizeBytes: diskPoolSize.flatMap(Self.parseSize))
        } else {
            logger.warning("no disk pool (--disk-pool none): limits.diskMb is not enforced")
        }
        configuration.sleepingRetention = Duration.parse(sleepingRetention)!
        configuration.blankWorkspaces = blankWorkspaces
        configuration.maxAwakeWorkspaces =
            Int(maxAwake)
            ?? AgentBoxConfiguration.awakeCapacity(
                forDescriptorLimit: descriptorLimit, otherSandboxes: parkedSandboxes + sandboxPool + blankWorkspaces,
                memoryBytes: WorkspaceMemory.bound(physical: Int(clamping: ProcessInfo.processInfo.physicalMemory)))
        logger.info(
            "workspaces awake at most",
            metadata: [
                "max": "\(configuration.maxAwakeWorkspaces!)", "open.files": "\(descriptorLimit)",
                "open.files.before": "\(descriptors.before)", "open.files.sandboxes": "\(descriptors.sandboxes)",
            ])
        configuration.processOutputBufferBytes = outputBufferBytes
        configuration.sandboxUIDBase = sandboxUIDBase
        configuration.allowedHostMountPrefixes = allowHostMount
        configuration.egressAllowedPrivateRanges = egressAllowPrivate.compactMap { IPNetwork($0) }
        if !egressAllowPrivate.isEmpty {
            logger.notice("egress may reach private ranges", metadata: ["ranges": "\(egressAllowPrivate.joined(separator: ", "))"])
        }
        configuration.previewDefaultLifetime = Duration.parse(previewTtl)!
        configuration.previewMaxLifetime = Duration.parse(previewMaxTtl)!
        configuration.portWaitLimit = Duration.parse(portWait)!
        var policy = try PermissionPolicy(compact: permissions)
        policy.timeoutMs = Int(Duration.parse(permissionTimeout)!.milliseconds)
        configuration.permissionPolicy = policy
        configuration.cancelGrace = Duration.parse(cancelGrace)!
        configuration.questionTimeout = Duration.parse(questionTimeout)!
        configuration.requirePreinstall = requirePreinstall
        configuration.toolkitMCP = ToolkitMCPServer(logger: logger)
        if let authHook {
            guard let url = URL(string: authHook), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                printError("error: --auth-hook must be an http(s) URL, not '\(authHook)'")
                throw ExitCode(2)
            }
            configuration.authHook = url
        }
        do {
            configuration.llmGateway = try llmGateway(dataDirectory: dataDirectory)
        } catch let error as ValidationError {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        for text in agentURLs {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let url = URL(string: parts[1]), ["http", "https"].contains(url.scheme ?? "") else {
                printError("error: --agent-url must be ID=http(s)://…, not '\(text)'")
                throw ExitCode(2)
            }
            configuration.agentDownloads[parts[0]] = url
        }
        if let packageIndex {
            guard let url = URL(string: packageIndex), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                printError("error: --package-index must be an http(s) URL, not '\(packageIndex)'")
                throw ExitCode(2)
            }
            configuration.packageIndex = url
        }
        for agent in try commandAgents() {
            configuration.agents.removeAll { $0.id == agent.id }
            configuration.agents.append(agent)
        }
        do {
            let initPath = helpersDir.map { URL(fileURLWithPath: $0).appendingPathComponent("agentbox-sandbox-init").path }
                ?? AgentBoxConfiguration.defaultSandboxInitPath()
            let (backend, notes) = try SandboxKind(rawValue: sandbox)!.makeBackend(
                dataDirectory: dataDirectory, initPath: initPath, sandboxPool: sandboxPool,
                prestartedSandboxes: sandboxPoolKind == "sandboxes" ? nil : false, parkedSandboxes: parkedSandboxes, logger: logger)
            configuration.sandbox = backend
            for note in notes { logger.warning("\(note)") }
            logger.info("sandbox", metadata: ["backend": "\(backend.name)"])
        } catch {
            printError("error: cannot set up the \(sandbox) sandbox: \(error)")
            printError("hint: install bubblewrap (apt-get install bubblewrap), or run with --sandbox unsandboxed for development")
            throw ExitCode(2)
        }
        let environmentToken = ProcessInfo.processInfo.environment["AGENTBOX_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        var server = ServerConfiguration(
            host: host, port: port, token: noToken ? nil : (token ?? environmentToken), allowUnauthenticatedRemote: noToken,
            previewDomain: previewDomain, corsOrigins: corsOrigins, uiDirectory: uiDirectory)
        server.clientHeadTimeout = Duration.parse(clientTimeout)!
        server.clientBodyTimeout = Duration.parse(clientTimeout)!
        do {
            try server.validate()
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        logger.info("data directory", metadata: ["path": "\(dataDirectory.path)"])
        if let nodeId {
            configuration.cluster = ClusterOptions(
                nodeId: nodeId, advertise: advertise ?? "", lease: .milliseconds(leaseMs),
                checkpointInterval: checkpointIntervalMs == 0 ? nil : .milliseconds(checkpointIntervalMs))
            if let blobs {
                do {
                    configuration.checkpoints = try await BlobCheckpointStore.open(s3: Self.s3Configuration(blobs), logger: logger)
                } catch {
                    printError("error: --blobs: \(error)")
                    throw ExitCode(2)
                }
            } else {
                logger.warning("a cluster node without --blobs: a workspace taken over from a dead node starts with no files")
            }
        }
        let store: any Store
        if self.store == "sqlite" {
            store = try SQLiteStore.open(in: configuration.dataDirectory)
        } else {
            do {
                store = try await PostgresStore.open(url: self.store, nodeId: nodeId, logger: logger)
            } catch {
                printError("error: cannot open the Postgres store: \(error)")
                throw ExitCode(2)
            }
            logger.info("store", metadata: ["kind": "postgres", "node": "\(nodeId ?? "-")"])
        }
        let manager = try WorkspaceManager.open(configuration: configuration, store: store, logger: logger)
        let shownHost = host.contains(":") ? "[\(host)]" : host
        try await runServer(manager: manager, configuration: server, logger: logger) { [gateway = configuration.llmGateway, advertise] port in
            gateway?.serverStarted(port: port)
            if let cluster = manager.cluster, advertise == nil { await cluster.setAdvertise("http://\(shownHost):\(port)") }
            // One line on stdout that scripts and tests wait for.
            printFlushed("agentbox listening on http://\(shownHost):\(port)")
        }
    }

    /// `s3://BUCKET?endpoint=http://HOST:PORT&region=R`, with the credentials of `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`.
    static func s3Configuration(_ text: String) throws -> S3Configuration {
        guard let components = URLComponents(string: text), components.scheme == "s3", let bucket = components.host, !bucket.isEmpty else {
            throw ValidationError("--blobs must be s3://BUCKET?endpoint=http://HOST:PORT&region=R, not '\(text)'")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }) { $1 }
        guard let endpointText = query["endpoint"], let endpoint = URL(string: endpointText), ["http", "https"].contains(endpoint.scheme ?? "") else {
            throw ValidationError("--blobs needs ?endpoint=http://HOST:PORT (the S3-compatible server), in '\(text)'")
        }
        let environment = ProcessInfo.processInfo.environment
        guard let access = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"], !access.isEmpty, !secret.isEmpty else {
            throw ValidationError("--blobs needs the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        return S3Configuration(endpoint: endpoint, bucket: bucket, region: query["region"] ?? "us-east-1", accessKey: access, secretKey: secret)
    }

    /// The LLM gateway of `--llm-upstream` and the keys (`--llm-key-file`, else the environment); `nil` without one.
    func llmGateway(dataDirectory: URL) throws -> LLMGateway? {
        guard !llmUpstreams.isEmpty else { return nil }
        var keys: [LLMProvider: String] = [:]
        if let llmKeyFile {
            guard let text = try? String(contentsOfFile: llmKeyFile, encoding: .utf8) else {
                throw ValidationError("--llm-key-file: cannot read \(llmKeyFile)")
            }
            for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") && !line.allSatisfy(\.isWhitespace) {
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[1].isEmpty,
                    let provider = LLMProvider.allCases.first(where: { $0.rawValue == parts[0] || $0.keyVariable == parts[0] })
                else {
                    throw ValidationError("--llm-key-file: each line is anthropic=KEY or openai=KEY, not '\(line.prefix(20))…'")
                }
                keys[provider] = parts[1]
            }
        }
        var upstreams: [LLMProvider: LLMUpstream] = [:]
        for text in llmUpstreams {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let provider = LLMProvider(rawValue: parts[0]) else {
                throw ValidationError("--llm-upstream must be anthropic=URL or openai=URL, not '\(text)'")
            }
            let url = parts[1] == "default" ? provider.standardUpstream : URL(string: parts[1])
            guard let url, ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("--llm-upstream \(provider.rawValue)= needs an http(s) URL or 'default', not '\(parts[1])'")
            }
            let key = keys[provider] ?? ProcessInfo.processInfo.environment[provider.keyVariable].flatMap { $0.isEmpty ? nil : $0 }
            guard let key else {
                throw ValidationError("--llm-upstream \(provider.rawValue): no key; set \(provider.keyVariable) in the server's environment or use --llm-key-file")
            }
            upstreams[provider] = LLMUpstream(url: url, key: key)
        }
        return try LLMGateway(upstreams: upstreams, dataDirectory: dataDirectory)
    }
}
