import AgentBoxAPI
import AgentBoxStore
import Foundation
import Testing

extension StoreConformance {
    @Suite("event numbering")
    struct EventSequence {
        @Test(arguments: StoreFactory.all)
        func reservationsStartAtZeroAndGrowByTheirCount(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                #expect(try await store.eventSequenceBound(key: key("a")) == 0)
                #expect(try await store.reserveEventSequence(key: key("a"), count: 100) == 100)
                #expect(try await store.reserveEventSequence(key: key("a"), count: 1) == 101)
                #expect(try await store.reserveEventSequence(key: key("a"), count: 1024) == 1125)
                #expect(try await store.eventSequenceBound(key: key("a")) == 1125)
                #expect(try await store.eventSequenceBound(key: key("b")) == 0, "each workspace has its own sequence")
            }
        }

        @Test(arguments: StoreFactory.all)
        func unknownWorkspacesAreNotFound(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                await expectStoreError(.notFound) { try await store.reserveEventSequence(key: key("absent"), count: 1) }
                await expectStoreError(.notFound) { try await store.eventSequenceBound(key: key("absent")) }
                #expect(try await store.workspace(key: key("absent")) == nil, "reserving creates nothing")
            }
        }

        @Test(arguments: StoreFactory.all)
        func countsBelowOneAreRefusedAndChangeNothing(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                _ = try await store.reserveEventSequence(key: key("a"), count: 10)
                for count: Int64 in [0, -1, -1000, .min] {
                    await expectStoreError(.invalidArgument, "count \(count)") { try await store.reserveEventSequence(key: key("a"), count: count) }
                }
                #expect(try await store.eventSequenceBound(key: key("a")) == 10, "the bound never moves backwards")
            }
        }

        @Test(arguments: StoreFactory.all)
        func concurrentReservationsHandOutDisjointBlocks(_ factory: StoreFactory) async throws {
            try await factory.withStore { store throws in
                try await createWorkspace(store, "a")
                try await createWorkspace(store, "b")
                let (tasks, count): (Int, Int64) = (50, 7)
                let bounds = try await withThrowingTaskGroup(of: (WorkspaceKey, Int64).self) { group in
                    for index in 0..<tasks * 2 {
                        let workspace = key(index.isMultiple(of: 2) ? "a" : "b")
                        group.addTask { (workspace, try await store.reserveEventSequence(key: workspace, count: count)) }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                for workspace in [key("a"), key("b")] {
                    let blocks = bounds.filter { $0.0 == workspace }.map { ($0.1 - count + 1)...$0.1 }
                    var numbers: [Int64] = []
                    for block in blocks { numbers += Array(block) }
                    #expect(Set(numbers).count == numbers.count, "no number is handed out twice")
                    #expect(numbers.sorted() == Array(1...Int64(tasks) * count), "and none is lost")
                    #expect(try await store.eventSequenceBound(key: workspace) == Int64(tasks) * count)
                }
            }
        }

        @Test(arguments: StoreFactory.durable)
        func reservationsSurviveReopening(_ factory: StoreFactory) async throws {
            try await factory.withLocation { location throws in
                let store = try await location.open()
                try await createWorkspace(store, "a")
                _ = try await store.reserveEventSequence(key: key("a"), count: 1024)
                _ = try await store.reserveEventSequence(key: key("a"), count: 1024)
                try await store.close()

                let reopened = try await location.open()
                #expect(try await reopened.eventSequenceBound(key: key("a")) == 2048)
                #expect(try await reopened.reserveEventSequence(key: key("a"), count: 1) == 2049, "numbering resumes above the bound")
                try await reopened.close()
            }
        }
    }
}
