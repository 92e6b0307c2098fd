import Testing

@testable import AgentBoxSandbox

/// The least-recently-used order the caches of boots share (storage namespaces, system layers, parked sandboxes).
@Suite("Recently used")
struct RecentlyUsedTests {
    @Test func aPutPastTheCapacityPushesOutTheLeastRecentlyUsed() {
        var cache = RecentlyUsed<String, Int>(capacity: 3)
        #expect(cache.put(1, for: "a").isEmpty && cache.put(2, for: "b").isEmpty && cache.put(3, for: "c").isEmpty)
        #expect(cache.use("a") == 1, "a becomes the most recently used")
        #expect(cache.put(4, for: "d") == [2], "b, the least recently used, goes")
        #expect(cache.keys == ["c", "a", "d"])
        #expect(cache.peek("c") == 3 && cache.keys.first == "c", "a peek is not a use")
        #expect(cache.put(5, for: "c") == [3], "a put on a key replaces its value")
        #expect(cache.keys == ["a", "d", "c"] && cache.count == 3)
    }

    @Test func removalsKeepTheOrderOfTheRest() {
        var cache = RecentlyUsed<String, Int>(capacity: 10)
        for (index, key) in ["x1", "y", "x2", "z", "x3"].enumerated() { cache.put(index, for: key) }
        #expect(cache.remove("z") == 3 && cache.remove("z") == nil)
        #expect(cache.removeAll { $0.hasPrefix("x") }.sorted() == [0, 2, 4])
        #expect(cache.keys == ["y"] && cache.contains("y") && !cache.contains("x1"))
        cache.put(7, for: "w")
        #expect(cache.removeAll() == [1, 7], "least recently used first")
        #expect(cache.isEmpty && cache.keys.isEmpty && cache.use("y") == nil)
        cache.put(8, for: "v")
        #expect(cache.keys == ["v"], "usable again once emptied")
    }

    @Test func aCapacityOfZeroKeepsNothing() {
        var cache = RecentlyUsed<Int, String>(capacity: 0)
        #expect(cache.put("kept?", for: 1) == ["kept?"])
        #expect(cache.isEmpty)
    }

    /// A long random run against a plain model of the same order.
    @Test func itAgreesWithASimpleModel() {
        var cache = RecentlyUsed<Int, Int>(capacity: 8)
        var model: [(key: Int, value: Int)] = []
        var generator = SystemRandomNumberGenerator()
        for step in 0..<5_000 {
            let key = Int.random(in: 0..<16, using: &generator)
            switch Int.random(in: 0..<3, using: &generator) {
            case 0:
                var expected: [Int] = []
                if let index = model.firstIndex(where: { $0.key == key }) { expected.append(model.remove(at: index).value) }
                model.append((key, step))
                while model.count > 8 { expected.append(model.removeFirst().value) }
                #expect(cache.put(step, for: key) == expected)
            case 1:
                let index = model.firstIndex { $0.key == key }
                let expected = index.map { model.remove(at: $0) }
                if let expected { model.append(expected) }
                #expect(cache.use(key) == expected?.value)
            default:
                let index = model.firstIndex { $0.key == key }
                #expect(cache.remove(key) == index.map { model.remove(at: $0).value })
            }
            #expect(cache.keys == model.map(\.key))
        }
    }
}
