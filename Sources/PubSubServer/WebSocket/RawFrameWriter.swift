import NIOCore

/// Sits first in a WebSocket channel's pipeline (next to the socket) so sessions can write
/// whole, pre-encoded frames as `ByteBuffer`s: the same bytes go to every subscriber, with no
/// per-subscriber framing or copy. Inbound it passes everything on.
final class RawFrameWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes a whole frame toward the socket (event loop only); no promise on the hot path.
    func write(_ frame: ByteBuffer) {
        context?.write(wrapOutboundOut(frame), promise: nil)
    }

    func writeAndFlush(_ frame: ByteBuffer, promise: EventLoopPromise<Void>? = nil) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        context.writeAndFlush(wrapOutboundOut(frame), promise: promise)
    }

    func flush() {
        context?.flush()
    }
}
