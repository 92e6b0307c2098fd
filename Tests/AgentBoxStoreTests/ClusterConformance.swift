import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

/// The behaviour of a ``ClusterStore`` as its documentation states it: two nodes, A and B, sharing one database.
/// Runs against ``PostgresStore`` when `AGENTBOX_POSTGRES_URL` names a server.
@Suite("Cluster conformance", .enabled(if: PostgresTestServer.shared != nil, "needs AGENTBOX_POSTGRES_URL (scripts/setup-postgres.sh)"))
struct ClusterConformance {
    /// Long enough that a lease stays live through a test's steps on a loaded machine.
    static let long = Duration.seconds(60)
    /// Short enough that a test waits little for a lease to expire.
    static let short = Duration.milliseconds(200)

    @Test func aLeaseIsAcquiredHeldRenewedAndTakenOverOnceExpired() async throws {
        try await withCluster { a, b in
            let first = try #require(acquired(try await a.acquireLease(key: key("w"), ttl: Self.long)))
            #expect(first.nodeId == "A" && first.epoch == 1 && first.key == key("w"), "a key never leased starts at epoch 1")
            let now = try await a.now()
            #expect(first.expiresAt > now.addingTimeInterval(50) && first.expiresAt < now.addingTimeInterval(70), "expiry in the store's time")

            #expect(try await b.acquireLease(key: key("w"), ttl: Self.long) == .held(first), "another node's live lease is held")
            #expect(try await b.lease(key: key("w")) == first, "and left as it was")

            // Renewing one's own keeps the epoch; here with a short ttl, so that it expires.
            let renewed = try #require(acquired(try await a.acquireLease(key: key("w"), ttl: Self.short)))
            #expect(renewed.epoch == 1 && renewed.nodeId == "A")

            let takeover = try await acquireOnceExpired(b, key("w"))
            #expect(takeover.nodeId == "B" && takeover.epoch == 2, "a takeover is one epoch up")
            #expect(try await a.acquireLease(key: key("w"), ttl: Self.long) == .held(takeover))
            #expect(try await a.liveLeases() == [takeover])
            #expect(try await a.lease(key: key("never")) == nil)
        }
    }

    @Test func anExpiredLeaseNoOneTookIsStillItsNodes() async throws {
        try await withCluster { a, b in
            _ = try #require(acquired(try await a.acquireLease(key: key("w"), ttl: Self.short)))
            _ = try await createWorkspace(a, "w")
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await a.liveLeases().isEmpty, "expired")
            try await a.touchWorkspace(key: key("w"), at: time(50))
            #expect(try await a.workspace(key: key("w"))?.lastActiveAt == time(50), "its writes go on")
            #expect(try await a.renewLeases(ttl: Self.long).isEmpty)
            let lease = try #require(try await a.lease(key: key("w")))
            #expect(lease.epoch == 1 && lease.nodeId == "A", "a renewal keeps the epoch")
            #expect(try await b.acquireLease(key: key("w"), ttl: Self.long) == .held(lease))
        }
    }

    @Test func releasingAndAcquiringAgainBumpsTheEpochEvenAcrossDeletion() async throws {
        try await withCluster { a, b in
            _ = try #require(acquired(try await a.acquireLease(key: key("w"), ttl: Self.long))?.epoch == 1)
            #expect(try await a.releaseLease(key: key("w")))
            #expect(try await !a.releaseLease(key: key("w")), "a second release finds nothing held")
            #expect(try await !b.releaseLease(key: key("w")), "nor does a node that never held it")
            let released = try #require(try await a.lease(key: key("w")))
            #expect(released.nodeId == nil && released.epoch == 1, "the epoch stays recorded")
            #expect(try await a.liveLeases().isEmpty)
            await expectStoreError(.fenced, "released: its writes are fenced") { try await a.createWorkspace(workspaceRecord("w")) }

            #expect(try #require(acquired(try await a.acquireLease(key: key("w"), ttl: Self.long))).epoch == 2, "even by the same node")
            _ = try await createWorkspace(a, "w")
            #expect(try await a.deleteWorkspace(key: key("w")))
            #expect(try await a.releaseLease(key: key("w")))
            let third = try #require(acquired(try await b.acquireLease(key: key("w"), ttl: Self.long)))
            #expect(third.epoch == 3 && third.nodeId == "B", "epochs never go down, not even when the workspace is deleted")
        }
    }

    @Test func aStaleOwnersWritesAreFencedAndWriteNothing() async throws {
        try await withCluster { a, b in
            _ = try #require(acquired(try await a.acquireLease(key: key("w"), ttl: Self.long)))
            let workspace = try await createWorkspace(a, "w", at: time(0))
            _ = try await a.reserveEventSequence(key: key("w"), count: 10)
            try await a.createSession(sessionRecord("s", of: "w"))
            try await a.appendSessionEvents(sessionEvents("s", 1...3))
            try await a.createSnapshot(snapshotRecord("snap", of: "w"))
            try await a.createCronJob(cronJob("j", of: "w", next: time(60)))
            try await a.createPreview(previewRecord("p", of: "w"))

            _ = try #require(acquired(try await a.acquireLease(key: key("w"), ttl: Self.short)))
            let takeover = try await acquireOnceExpired(b, key("w"))
            #expect(takeover.epoch == 2)

            await expectStoreError(.fenced) { try await a.touchWorkspace(key: key("w"), at: time(500)) }
            await expectStoreError(.fenced) { try await a.appendSessionEvents(sessionEvents("s", 4...6)) }
            await expectStoreError(.fenced) { try await a.createPreview(previewRecord("p2", of: "w")) }
            await expectStoreError(.fenced) {
                try await a.claimCronSlot(key: key("w"), id: "j", slot: time(60), next: time(120), run: cronRun("r", job: "j", of: "w"), retention: 10)
            }
            await expectStoreError(.fenced) { try await a.reserveEventSequence(key: key("w"), count: 5) }
            await expectStoreError(.fenced) { try await a.updateWorkspaceConfig(key: key("w"), config: WorkspaceConfig()) }
            await expectStoreError(.fenced) { try await a.createSession(sessionRecord("s2", of: "w")) }
            await expectStoreError(.fenced) { try await a.updateSession(sessionRecord("s", of: "w")) }
            await expectStoreError(.fenced) { try await a.deleteSession(id: "s") }
            await expectStoreError(.fenced) { try await a.deleteSnapshot(id: "snap") }
            await expectStoreError(.fenced) { try await a.appendToolCall(toolCall("c"), of: key("w"), retention: 10) }
            await expectStoreError(.fenced) { try await a.addLLMUsage(LLMUsageFigures(requests: 1), of: key("w"), session: nil, model: "m") }
            await expectStoreError(.fenced) { try await a.deleteWorkspace(key: key("w")) }

            // Nothing of it was written: B, the owner, sees the workspace as A left it before the takeover.
            #expect(try await b.workspace(key: key("w")) == workspace)
            #expect(try await b.eventSequenceBound(key: key("w")) == 10)
            #expect(try await b.sessions(of: key("w")).map(\.id) == ["s"])
            #expect(try await b.lastSessionEventSeq(of: "s") == 3)
            #expect(try await b.previews(of: key("w"), now: time(0)).count == 1)
            #expect(try await b.cronJob(key: key("w"), id: "j")?.nextRunAt == time(60))
            #expect(try await b.cronRuns(key: key("w"), jobId: "j", limit: 10).isEmpty)
            #expect(try await b.snapshot(id: "snap") != nil)
            #expect(try await b.toolCalls(of: key("w"), after: 0, limit: 10).isEmpty)
            #expect(try await b.llmUsage(of: key("w")).isEmpty)

            // The owner's writes go through; writes that concern no one workspace are not fenced.
            try await b.appendSessionEvents(sessionEvents("s", 4...6))
            #expect(try await b.claimCronSlot(key: key("w"), id: "j", slot: time(60), next: time(120), run: cronRun("r", job: "j", of: "w"), retention: 10))
            #expect(try await a.putToolkit(toolkit("web")))
            try await a.createImage(imageRecord("base", from: "w"))
        }
    }

    @Test func onlyTheHolderRecordsACheckpointAndTheRecordOutlivesTheLease() async throws {
        try await withCluster { a, b in
            _ = try #require(acquired(try await a.acquireLease(key: key("w"), ttl: Self.short)))
            try await a.recordCheckpoint(key: key("w"), id: "c1")
            var lease = try #require(try await b.lease(key: key("w")))
            #expect(lease.checkpointId == "c1" && lease.checkpointEpoch == 1)
            await expectStoreError(.fenced, "a node that holds no lease") { try await b.recordCheckpoint(key: key("w"), id: "b0") }

            // B takes over; A's late checkpoint (it was paused, say) is refused and the pointer stays A's last.
            let takeover = try await acquireOnceExpired(b, key("w"))
            #expect(takeover.checkpointId == "c1" && takeover.checkpointEpoch == 1, "the new holder finds what to restore")
            await expectStoreError(.fenced, "a stale owner") { try await a.recordCheckpoint(key: key("w"), id: "c2") }
            #expect(try await b.lease(key: key("w"))?.checkpointId == "c1")

            try await b.recordCheckpoint(key: key("w"), id: "c3")
            #expect(try await b.releaseLease(key: key("w")))
            lease = try #require(try await a.lease(key: key("w")))
            #expect(lease.nodeId == nil && lease.checkpointId == "c3" && lease.checkpointEpoch == 2, "kept when released")
            await expectStoreError(.fenced, "released") { try await b.recordCheckpoint(key: key("w"), id: "c4") }
        }
    }

    /// The holder's recorded state is what other nodes read for the workspace; a takeover or a release forgets it,
    /// a renewal keeps it, and only the holder records one.
    @Test func theHoldersStateIsReadByOthersAndForgottenWithTheLease() async throws {
        try await withCluster { a, b in
            _ = try #require(acquired(try await a.acquireLease(key: key("w"), ttl: Self.short)))
            _ = try #require(acquired(try await a.acquireLease(key: key("v"), ttl: Self.long)))
            #expect(try await b.liveLeases(keys: [key("v")]).first?.state == nil)
            try await a.recordState(key: key("w"), state: .running)
            try await a.recordState(key: key("v"), state: .sleeping)
            // (`w`'s short lease may have run out already on a loaded machine: it is read whole, not as a live one.)
            let seen = try await b.liveLeases(keys: [key("v"), key("x")])
            #expect(seen.map(\.key) == [key("v")] && seen.map(\.state) == [.sleeping] && seen.allSatisfy { $0.nodeId == a.nodeId })
            #expect(try await b.lease(key: key("w"))?.state == .running)
            #expect(try await b.liveLeases(keys: []).isEmpty)
            _ = try #require(acquired(try await a.acquireLease(key: key("w"), ttl: Self.short)))
            #expect(try await b.lease(key: key("w"))?.state == .running, "a renewal keeps it")
            await expectStoreError(.fenced, "a node that holds no lease") { try await b.recordState(key: key("w"), state: .sleeping) }

            let takeover = try await acquireOnceExpired(b, key("w"))
            #expect(takeover.state == nil, "the new holder has recorded nothing yet")
            await expectStoreError(.fenced, "a stale owner") { try await a.recordState(key: key("w"), state: .running) }
            try await b.recordState(key: key("w"), state: .booting)
            #expect(try await a.lease(key: key("w"))?.state == .booting)
            #expect(try await b.releaseLease(key: key("w")))
            #expect(try await a.lease(key: key("w"))?.state == nil, "released")
            #expect(try await a.liveLeases(keys: [key("w")]).isEmpty)
        }
    }

    @Test func aNodeThatNeverAcquiredALeaseCannotWrite() async throws {
        try await withCluster { a, b in
            await expectStoreError(.fenced) { try await b.createWorkspace(workspaceRecord("w")) }
            #expect(try await a.workspace(key: key("w")) == nil)
            _ = try #require(acquired(try await a.acquireLease(key: key("w"), ttl: Self.long)))
            try await createWorkspace(a, "w")
            try await a.createSession(sessionRecord("s", of: "w"))
            await expectStoreError(.fenced) { try await b.appendSessionEvents(sessionEvents("s", 1...2)) }
            await expectStoreError(.fenced, "a session the store does not know has no lease to check") {
                try await a.appendSessionEvents(sessionEvents("unknown", 1...1))
            }
            #expect(try await a.lastSessionEventSeq(of: "s") == 0)
            #expect(try await !a.updateSession(sessionRecord("absent", of: "w")), "an unknown session is still not an error")
        }
    }

    @Test func renewalReportsTheLeasesTakenOverAndForgetsThem() async throws {
        try await withCluster { a, b in
            _ = try #require(acquired(try await a.acquireLease(key: key("lost"), ttl: Self.short)))
            _ = try #require(acquired(try await a.acquireLease(key: key("kept"), ttl: Self.long)))
            _ = try await acquireOnceExpired(b, key("lost"))
            #expect(try await a.renewLeases(ttl: .seconds(120)) == [key("lost")])
            let kept = try #require(try await a.lease(key: key("kept")))
            #expect(kept.expiresAt > (try await a.now()).addingTimeInterval(100), "renewed until the store's now + ttl")
            #expect(try await a.renewLeases(ttl: Self.long).isEmpty, "a lost lease is forgotten")
            try await createWorkspace(a, "kept")
            await expectStoreError(.fenced) { try await a.createWorkspace(workspaceRecord("lost")) }
            #expect(try await b.renewLeases(ttl: Self.long).isEmpty)
        }
    }

    @Test func nodesHeartbeatAndAreRemoved() async throws {
        try await withCluster { a, b in
            let started = time(0)
            let first = try await a.heartbeat(address: "http://10.0.0.1:8080", startedAt: started)
            let now = try await a.now()
            #expect(first.id == "A" && first.address == "http://10.0.0.1:8080" && first.startedAt == started)
            #expect(abs(first.heartbeatAt.timeIntervalSince(now)) < 5, "the heartbeat is the store's time")
            try await b.heartbeat(address: "http://10.0.0.2:8080", startedAt: started)
            try await Task.sleep(for: .milliseconds(20))
            let again = try await a.heartbeat(address: "http://10.0.0.9:8080", startedAt: time(10))
            #expect(again.heartbeatAt > first.heartbeatAt && again.address == "http://10.0.0.9:8080" && again.startedAt == time(10))
            #expect(try await b.nodes().map(\.id) == ["A", "B"])
            #expect(try await b.nodes().first == again)
            #expect(try await b.removeNode(id: "A"))
            #expect(try await !b.removeNode(id: "A"))
            #expect(try await a.nodes().map(\.id) == ["B"])
        }
    }

    @Test func interruptingRunsLeavesThoseOfLiveLeasedWorkspacesAlone() async throws {
        try await withCluster { a, b in
            _ = try #require(acquired(try await a.acquireLease(key: key("live"), ttl: Self.long)))
            _ = try #require(acquired(try await b.acquireLease(key: key("dead"), ttl: Self.short)))
            for (store, raw) in [(a, "live"), (b, "dead")] {
                try await store.createCronJob(cronJob("j", of: raw, next: nil))
                #expect(
                    try await store.claimCronSlot(
                        key: key(raw), id: "j", slot: nil, next: nil, run: cronRun("run-\(raw)", job: "j", of: raw), retention: 10))
            }
            try await Task.sleep(for: .milliseconds(400))
            let interrupted = try await a.interruptCronRuns(endedAt: time(100), error: "node stopped")
            #expect(interrupted.map(\.run.runId) == ["run-dead"])
            #expect(try await a.cronRun(key: key("live"), jobId: "j", runId: "run-live")?.run.status == .running)
            #expect(try await a.cronRun(key: key("dead"), jobId: "j", runId: "run-dead")?.run.status == .error)
        }
    }

    @Test func concurrentAcquirersOfAFreeKeyHaveExactlyOneWinner() async throws {
        try await withCluster { a, b in
            for round in 0..<20 {
                let workspace = key("race\(round)")
                async let fromA = a.acquireLease(key: workspace, ttl: Self.long)
                async let fromB = b.acquireLease(key: workspace, ttl: Self.long)
                let outcomes = try await [fromA, fromB]
                let winners = outcomes.compactMap(acquired)
                #expect(winners.count == 1, "round \(round): \(outcomes)")
                let winner = try #require(winners.first)
                #expect(winner.epoch == 1)
                #expect(outcomes.contains(.held(winner)), "the loser sees the winner's lease")
            }
        }
    }

    @Test func storesOpeningAtOnceMigrateOnce() async throws {
        let server = try #require(PostgresTestServer.shared)
        let location = try await server.createDatabase()
        let opened = await withTaskGroup(of: Result<PostgresStore, any Error>.self) { group in
            for node in ["A", "B", "C"] {
                group.addTask {
                    do {
                        return .success(
                            try await PostgresStore.open(location: location, nodeId: node, maximumConnections: 2, logger: PostgresTestServer.logger))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        for result in opened {
            switch result {
            case .success(let store):
                #expect(try await store.workspaces(after: nil, limit: 10).isEmpty)
                try await store.close()
            case .failure(let error):
                Issue.record("a store opening beside others failed: \(error)")
            }
        }
        await server.dropDatabase(location)
    }

    @Test func aStoreOpenedWithoutANodeIdTakesPartInNoCluster() async throws {
        let server = try #require(PostgresTestServer.shared)
        let location = try await server.createDatabase()
        let store = try await PostgresStore.open(location: location, logger: PostgresTestServer.logger)
        #expect(store.nodeId == "")
        await expectStoreError(.invalidArgument) { try await store.acquireLease(key: key("w"), ttl: Self.long) }
        try await createWorkspace(store, "w")
        try await store.close()
        await expectStoreError(.closed) { try await store.now() }
        await server.dropDatabase(location)
    }

    // MARK: Helpers

    /// Runs `body` with the stores of nodes A and B on one new database.
    private func withCluster(_ body: (PostgresStore, PostgresStore) async throws -> Void) async throws {
        let server = try #require(PostgresTestServer.shared)
        let location = try await server.createDatabase()
        do {
            let a = try await PostgresStore.open(location: location, nodeId: "A", maximumConnections: 3, logger: PostgresTestServer.logger)
            let b = try await PostgresStore.open(location: location, nodeId: "B", maximumConnections: 3, logger: PostgresTestServer.logger)
            do {
                try await body(a, b)
            } catch {
                try? await a.close()
                try? await b.close()
                throw error
            }
            try await a.close()
            try await b.close()
        } catch {
            await server.dropDatabase(location)
            throw error
        }
        await server.dropDatabase(location)
    }

    private func acquired(_ acquisition: LeaseAcquisition) -> LeaseRecord? {
        if case .acquired(let lease) = acquisition { lease } else { nil }
    }

    /// Tries to take `key` until the holder's lease has expired (within ten seconds).
    private func acquireOnceExpired(_ store: PostgresStore, _ key: WorkspaceKey) async throws -> LeaseRecord {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let lease = acquired(try await store.acquireLease(key: key, ttl: Self.long)) { return lease }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw StoreError(.fenced, "the lease of \(key) did not expire")
    }
}
