import PubSubCore
import PubSubProtocol

/// Wire-format slots of ``PublicationFrames``: the hub encodes each publication once per slot
/// that has subscribers on this node, in this order.
enum WireFormat {
    static let native = 0
    static let phoenixV1 = 1
    static let phoenixV2 = 2
    /// permessage-deflate variants: compressed once per publication, from the plain slot's
    /// frame when that format has subscribers too (so listed after it).
    static let nativeDeflate = 3
    static let phoenixV1Deflate = 4

    /// How logs name a connection's protocol.
    static let names = ["native", "phoenix-1.0.0", "phoenix-2.0.0", "native+deflate", "phoenix-1.0.0+deflate"]

    static let encoders: [any PublicationEncoder] = [
        NativeEventEncoder(), PhoenixEventEncoder(version: .v1), PhoenixEventEncoder(version: .v2),
        DeflatedEncoder(NativeEventEncoder(), reusing: native), DeflatedEncoder(PhoenixEventEncoder(version: .v1), reusing: phoenixV1),
    ]
}
