import NIOCore
import PubSubCore

/// One publication as the cluster keeps and sends it (RedisScripts): parsed from a history
/// entry or a channel message, its payload a slice of the buffer it arrived in.
struct RedisRecord {
    let seq: UInt64
    let timestampMillis: Int64
    let id: String
    let payload: ByteBuffer

    /// Parses `<seq> <ts> <id length> <id><payload>`, the whole of `buffer`.
    init?(_ buffer: ByteBuffer) {
        var buffer = buffer
        guard let seq = buffer.readDecimal(until: UInt8(ascii: " ")), seq > 0,
            let ts = buffer.readDecimal(until: UInt8(ascii: " ")),
            let idLength = buffer.readDecimal(until: UInt8(ascii: " ")),
            let id = buffer.readString(length: Int(idLength))
        else { return nil }
        self.seq = seq
        self.timestampMillis = Int64(clamping: ts)
        self.id = id
        self.payload = buffer
    }

    var entry: PublicationBatch.Entry {
        PublicationBatch.Entry(seq: seq, id: MessageID(id), payload: payload, timestampMillis: timestampMillis)
    }

    /// For a history read: the payload copied out of the (larger) reply it arrived in.
    func publication(topic: String, counters: TopicCounters) -> Publication {
        Publication(
            PublicationContent(
                topic: topic, seq: seq, id: MessageID(id), payload: Publication.ownCopy(of: payload), timestampMillis: timestampMillis
            ),
            topicCounters: counters
        )
    }
}

/// What a node is sent on a topic's channel.
enum ChannelMessage {
    /// New publications of the topic's incarnation `epoch`, in seq order.
    case published(epoch: String, records: [RedisRecord])
    /// The incarnation `epoch` of the topic was deleted.
    case deleted(epoch: String)

    init?(_ buffer: ByteBuffer) {
        var buffer = buffer
        guard let kind = buffer.readInteger(as: UInt8.self) else { return nil }
        switch kind {
        case UInt8(ascii: "D"):
            guard let epoch = buffer.readString(length: buffer.readableBytes) else { return nil }
            self = .deleted(epoch: epoch)
        case UInt8(ascii: "P"):
            guard let space = buffer.readableBytesView.firstIndex(of: UInt8(ascii: " ")),
                let epoch = buffer.readString(length: space - buffer.readerIndex)
            else { return nil }
            buffer.moveReaderIndex(forwardBy: 1)
            var records: [RedisRecord] = []
            while buffer.readableBytes > 0 {
                guard let length = buffer.readDecimal(until: UInt8(ascii: " ")), length <= buffer.readableBytes,
                    let bytes = buffer.readSlice(length: Int(length)), let record = RedisRecord(bytes)
                else { return nil }
                records.append(record)
            }
            self = .published(epoch: epoch, records: records)
        default:
            return nil
        }
    }
}

extension ByteBuffer {
    /// Reads the decimal digits before `terminator` and the terminator; nil (nothing read
    /// that matters) when they are not there.
    mutating func readDecimal(until terminator: UInt8) -> UInt64? {
        var value: UInt64 = 0
        var digits = 0
        for byte in readableBytesView {
            if byte == terminator {
                guard digits > 0 else { return nil }
                moveReaderIndex(forwardBy: digits + 1)
                return value
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 19 else { return nil }
            value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return nil
    }
}
