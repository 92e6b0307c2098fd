/// Values by key, at most `capacity` of them, in the order they were last put or used: putting one past the capacity
/// pushes out the least recently used. Every operation is O(1) but ``removeAll(where:)`` (a doubly linked list
/// threaded through the dictionary). A value type without locking: its owner keeps it behind its own lock, and drops
/// what comes out (descriptors, sandboxes to stop) outside that lock.
///
/// The caches of what boots reuse (storage namespaces, system layers' overlays, parked sandboxes) share it, and so does
/// the server's budget of awake workspaces (its idle ones, longest idle first).
package struct RecentlyUsed<Key: Hashable, Value> {
    fileprivate struct Node {
        var value: Value
        /// Toward the least recently used end.
        var older: Key?
        /// Toward the most recently used end.
        var newer: Key?
    }

    package let capacity: Int
    private var nodes: [Key: Node] = [:]
    private var oldest: Key?
    private var newest: Key?

    package init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    package var count: Int { nodes.count }
    package var isEmpty: Bool { nodes.isEmpty }
    package func contains(_ key: Key) -> Bool { nodes[key] != nil }
    /// The value of `key`, without counting as a use.
    package func peek(_ key: Key) -> Value? { nodes[key]?.value }

    /// The value of `key`, which becomes the most recently used.
    package mutating func use(_ key: Key) -> Value? {
        guard let node = unlink(key) else { return nil }
        link(key, node.value)
        return node.value
    }

    /// Puts `value` under `key` as the most recently used; returns what it replaced and what it pushed out (the least
    /// recently used, past the capacity; with a capacity of 0, `value` itself).
    @discardableResult
    package mutating func put(_ value: Value, for key: Key) -> [Value] {
        var dropped: [Value] = []
        if let old = unlink(key) { dropped.append(old.value) }
        link(key, value)
        while nodes.count > capacity, let key = oldest, let old = unlink(key) { dropped.append(old.value) }
        return dropped
    }

    /// Takes the value of `key` out.
    @discardableResult
    package mutating func remove(_ key: Key) -> Value? {
        unlink(key)?.value
    }

    /// Takes out every value whose key matches; O(count).
    package mutating func removeAll(where matches: (Key) -> Bool) -> [Value] {
        nodes.keys.filter(matches).compactMap { unlink($0)?.value }
    }

    /// Takes out every value, least recently used first.
    package mutating func removeAll() -> [Value] {
        var values: [Value] = []
        values.reserveCapacity(nodes.count)
        while let key = oldest, let node = unlink(key) { values.append(node.value) }
        return values
    }

    /// Takes out the least recently used key and its value.
    package mutating func removeOldest() -> (key: Key, value: Value)? {
        guard let key = oldest, let node = unlink(key) else { return nil }
        return (key, node.value)
    }

    /// The keys, least recently used first.
    package var keys: [Key] {
        var keys: [Key] = []
        keys.reserveCapacity(nodes.count)
        var key = oldest
        while let current = key {
            keys.append(current)
            key = nodes[current]?.newer
        }
        return keys
    }

    private mutating func link(_ key: Key, _ value: Value) {
        nodes[key] = Node(value: value, older: newest, newer: nil)
        if let newest { nodes[newest]?.newer = key } else { oldest = key }
        newest = key
    }

    private mutating func unlink(_ key: Key) -> Node? {
        guard let node = nodes.removeValue(forKey: key) else { return nil }
        if let older = node.older { nodes[older]?.newer = node.newer } else { oldest = node.newer }
        if let newer = node.newer { nodes[newer]?.older = node.older } else { newest = node.older }
        return node
    }
}

extension RecentlyUsed: Sendable where Key: Sendable, Value: Sendable {}
extension RecentlyUsed.Node: Sendable where Key: Sendable, Value: Sendable {}
