import CoreMetrics
import NIOCore
import Synchronization

/// The bytes that crossed one workspace's network boundary since it booted.
///
/// A workspace's network namespace has only a loopback: its one way out is the egress proxy, and the ways in are the
/// server's connections to its ports (previews, fetches). All three are the server's own sockets, so the server
/// counts what passes through them here; traffic between the workspace's own processes on its loopback is not
/// network traffic and is not counted. Figures are of the current boot: a boot starts them at 0.
public final class WorkspaceTraffic: Sendable {
    private let received = Atomic<Int64>(0)
    private let sent = Atomic<Int64>(0)

    init() {}

    /// Bytes received by the workspace (egress answers, preview and fetch requests) and sent by it.
    public var bytes: (received: Int64, sent: Int64) {
        (received.load(ordering: .relaxed), sent.load(ordering: .relaxed))
    }

    /// Counts `count` bytes that went into the workspace.
    public func countReceived(_ count: Int) {
        received.add(Int64(count), ordering: .relaxed)
    }

    /// Counts `count` bytes that came out of the workspace.
    public func countSent(_ count: Int) {
        sent.add(Int64(count), ordering: .relaxed)
    }

    /// Starts the figures of a new boot.
    func reset() {
        received.store(0, ordering: .relaxed)
        sent.store(0, ordering: .relaxed)
    }

    /// A door into the workspace's network: these figures, and the server-wide counters of the door's kind.
    func door(in bytesIn: Counter?, out bytesOut: Counter?) -> TrafficDoor {
        TrafficDoor(traffic: self, bytesIn: bytesIn, bytesOut: bytesOut)
    }
}

/// Where bytes cross into or out of a workspace, and what counts them: its ``WorkspaceTraffic`` and the server-wide
/// counters of this kind of door (preview, fetch or egress).
public struct TrafficDoor: Sendable {
    let traffic: WorkspaceTraffic
    let bytesIn: Counter?
    let bytesOut: Counter?

    /// Counts bytes that went into the workspace.
    public func countIn(_ count: Int) {
        guard count > 0 else { return }
        traffic.countReceived(count)
        bytesIn?.increment(by: count)
    }

    /// Counts bytes that came out of the workspace.
    public func countOut(_ count: Int) {
        guard count > 0 else { return }
        traffic.countSent(count)
        bytesOut?.increment(by: count)
    }
}

/// Counts the bytes of a channel whose peer is inside a workspace: what it reads came out of the workspace, what it
/// writes goes in. Sits first in the pipeline, so it sees the bytes as they cross the socket.
final class TrafficCountingHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let door: TrafficDoor

    init(door: TrafficDoor) {
        self.door = door
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        door.countOut(unwrapInboundIn(data).readableBytes)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        door.countIn(unwrapOutboundIn(data).readableBytes)
        context.write(data, promise: promise)
    }
}
