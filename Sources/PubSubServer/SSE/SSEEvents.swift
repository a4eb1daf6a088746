import NIOCore
import PubSubCore
import PubSubProtocol

/// The `text/event-stream` bytes of a stream's events (SPEC 9). Every event's data is a native
/// protocol frame's JSON: publications are the shared native `event` frames the hub already
/// encoded for WebSocket subscribers, written without their WebSocket header, so a stream
/// costs the publish path nothing (docs/design.md, "SSE").
///
///     id: 42
///     event: message
///     data: {"type":"event","topic":"orders","seq":42,"message":{…},"ts":"…"}
///
enum SSEEvents {
    /// A comment line: EventSource ignores it; proxies and clients see a live connection.
    static let heartbeat = ByteBuffer(string: ": heartbeat\n\n")

    /// An event named `name` whose data is the JSON of the native frame `frame` (a whole
    /// WebSocket frame, as the native codec writes them).
    static func append(event name: String, frame: ByteBuffer, to out: inout ByteBuffer) {
        frame.withUnsafeReadableBytes { bytes in
            out.writeString("event: \(name)\n")
            appendData(payload(ofFrame: bytes), to: &out)
        }
    }

    /// A notice (`event: info`): drops, a deleted topic, shutdown, an error that ends the stream.
    static func appendInfo(_ message: ServerMessage, to out: inout ByteBuffer) {
        append(event: "info", frame: NativeCodec.frame(message), to: &out)
    }

    /// A publication: `id` is its seq (EventSource sends it back as `Last-Event-ID`).
    static func appendMessage(_ publication: Publication, to out: inout ByteBuffer) {
        out.writeString("id: ")
        out.writeString(String(publication.seq))
        out.writeString("\nevent: message\n")
        appendData(payload(ofFrame: publication.content.frames.bytes(WireFormat.native)), to: &out)
    }

    /// The payload of an unmasked WebSocket frame (server frames never are masked).
    static func payload(ofFrame frame: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard frame.count >= 2 else { return UnsafeRawBufferPointer(rebasing: frame[frame.count...]) }
        let header = switch frame[1] & 0x7F {
        case 126: 4
        case 127: 10
        default: 2
        }
        return UnsafeRawBufferPointer(rebasing: frame[min(header, frame.count)...])
    }

    /// `data: <json>` and the blank line that ends the event. A payload is published as
    /// written, so its JSON may hold line breaks between tokens (never inside a string, where
    /// JSON escapes them): each line goes in a `data:` line of its own, which EventSource joins
    /// with `\n` back into the same JSON.
    static func appendData(_ json: UnsafeRawBufferPointer, to out: inout ByteBuffer) {
        out.writeStaticString("data: ")
        var start = 0
        var index = 0
        while index < json.count {
            let byte = json[index]
            guard byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") else {
                index += 1
                continue
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: json[start..<index]))
            out.writeStaticString("\ndata: ")
            // CRLF is one line break.
            index += byte == UInt8(ascii: "\r") && index + 1 < json.count && json[index + 1] == UInt8(ascii: "\n") ? 2 : 1
            start = index
        }
        out.writeBytes(UnsafeRawBufferPointer(rebasing: json[start...]))
        out.writeStaticString("\n\n")
    }
}
