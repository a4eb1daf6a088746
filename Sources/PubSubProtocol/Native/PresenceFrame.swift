import NIOCore
import PubSubCore

/// The native protocol's presence (SPEC 9): the `presence` frame a subscriber that asked is
/// sent, and the entries as the REST list shows them.
///
///     {"type":"presence","topic":"room","joins":[{"client_id":"c-x-1","user":"ana","joined_at":"…"}],"leaves":[],"ts":"…"}
extension NativeCodec {
    /// A whole WebSocket text frame holding `diff` as a `presence` message.
    public static func presenceFrame(_ diff: PresenceDiff) -> ByteBuffer {
        var buffer = ByteBuffer()
        let entries = diff.joins.count + diff.leaves.count
        JSONWriter.append(to: &buffer, estimatedSize: 128 + diff.topic.utf8.count + 112 * entries, frame: true) { json in
            json.object { o in
                o.key("type"); o.plainString("presence")
                o.key("topic"); o.plainString(diff.topic)
                o.key("joins"); o.presenceEntries(diff.joins)
                o.key("leaves"); o.presenceEntries(diff.leaves)
                o.key("ts"); o.timestamp(millis: WallClock.nowMillis())
            }
        }
        return buffer
    }
}

extension JSONWriter {
    /// `[{"client_id":…,"user":…|null,"joined_at":…}, …]`.
    public mutating func presenceEntries(_ entries: [PresenceEntry]) {
        array { a in
            for entry in entries {
                a.object { o in
                    o.member("client_id", entry.clientID)
                    o.key("user")
                    if let user = entry.user { o.string(user) } else { o.null() }
                    o.key("joined_at"); o.timestamp(millis: entry.joinedAtMillis)
                }
            }
        }
    }
}
