import AgentBoxAPI
import NIOCore

/// The fan-out of one workspace's events: numbers them, keeps the latest in a bounded ring for replay, and hands
/// them to every subscriber.
///
/// Owned by a ``WorkspaceRuntime`` (so it is never shared across isolation domains). Memory is bounded twice: the
/// ring holds at most `replayCapacity` events and `replayByteCapacity` bytes of them, and each subscriber's buffer at most `subscriberCapacity`. A
/// subscriber that falls that far behind is finished rather than allowed to grow the server's memory; it can
/// reconnect with the last sequence number it saw and continue from the ring.
struct EventHub {
    /// Grows as events arrive, up to `replayCapacity`: a quiet workspace's ring costs little.
    private var ring = CircularBuffer<WorkspaceEventEnvelope>(initialCapacity: 4)
    private let replayCapacity: Int
    private var ringBytes = 0
    private let replayByteCapacity: Int
    private var subscribers: [UInt64: AsyncStream<WorkspaceEventEnvelope>.Continuation] = [:]
    private var nextSubscriberID: UInt64 = 0
    private let subscriberCapacity: Int

    init(replayCapacity: Int, replayByteCapacity: Int = 4 << 20, subscriberCapacity: Int) {
        self.replayCapacity = max(1, replayCapacity)
        self.replayByteCapacity = replayByteCapacity
        self.subscriberCapacity = max(1, subscriberCapacity)
    }

    var subscriberCount: Int { subscribers.count }

    /// Delivers `envelope` to every subscriber and remembers it for replay.
    mutating func publish(_ envelope: WorkspaceEventEnvelope) {
        // Bounded by count and by bytes: output events can be large.
        let size = envelope.event.approximateSize
        while !ring.isEmpty, ring.count == replayCapacity || ringBytes + size > replayByteCapacity {
            ringBytes -= ring.removeFirst().event.approximateSize
        }
        ring.append(envelope)
        ringBytes += size
        for (id, continuation) in subscribers {
            if case .dropped = continuation.yield(envelope) {
                // Too slow: end its stream; it resumes from the ring with Last-Event-ID.
                subscribers[id] = nil
                continuation.finish()
            }
        }
    }

    /// A new subscription that first replays the remembered events numbered above `after` (none when `nil`).
    ///
    /// `onTermination` runs when the consumer stops listening, with the subscription's id to remove.
    mutating func subscribe(
        after: Int64?, onTermination: @escaping @Sendable (UInt64) -> Void
    ) -> AsyncStream<WorkspaceEventEnvelope> {
        let id = nextSubscriberID
        nextSubscriberID += 1
        let replay = after.map { after in remembered().filter { $0.seq > after } } ?? []
        let (stream, continuation) = AsyncStream<WorkspaceEventEnvelope>.makeStream(
            bufferingPolicy: .bufferingOldest(max(subscriberCapacity, replay.count)))
        for envelope in replay { continuation.yield(envelope) }
        continuation.onTermination = { _ in onTermination(id) }
        subscribers[id] = continuation
        return stream
    }

    mutating func unsubscribe(_ id: UInt64) {
        subscribers[id] = nil
    }

    /// Ends every subscription (the workspace is gone, or the server is stopping).
    mutating func finishAll() {
        let all = subscribers.values
        subscribers.removeAll()
        for continuation in all { continuation.finish() }
    }

    /// The remembered events, oldest first.
    func remembered() -> [WorkspaceEventEnvelope] {
        Array(ring)
    }
}
