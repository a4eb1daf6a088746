import Foundation
import Logging
import NIOCore
import PubSubCore
import PubSubProtocol

#if canImport(Glibc)
import Glibc
#endif

/// `--log-format json` (SPEC 8): one JSON object per line on standard error, `ts`, `level`,
/// `msg`, then the line's context (`client_id`, `topic`, `remote`, …) as members, for log
/// pipelines that read JSON lines (Loki, Elasticsearch, CloudWatch). What reaches a log never
/// holds a token or a key: the server logs neither.
///
///     LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: .info) }
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public let label: String

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let line = Self.line(
            millis: WallClock.nowMillis(), level: event.level, message: event.message.description,
            metadata: event.metadata.map { metadata.merging($0) { $1 } } ?? metadata
        )
        // One write(2) a line: lines from different threads never interleave within a line.
        line.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { if written < 0 && errno == EINTR { continue } else { return } }
                offset += written
            }
        }
    }

    /// The line, with its newline: members in a fixed order, the context's sorted by key (a
    /// context key named like a fixed member is written as given, after it).
    static func line(millis: Int64, level: Logger.Level, message: String, metadata: Logger.Metadata) -> ByteBuffer {
        var json = JSONWriter(frame: false)
        json.object { o in
            o.key("ts"); o.timestamp(millis: millis)
            o.key("level"); o.plainString(level.rawValue)
            o.member("msg", message)
            for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
                o.key(escaping: key)
                member(value, into: &o)
            }
        }
        var line = json.finish()
        line.writeInteger(UInt8(ascii: "\n"))
        return line
    }

    private static func member(_ value: Logger.Metadata.Value, into o: inout JSONWriter) {
        switch value {
        case .string(let text): o.string(text)
        case .stringConvertible(let value): o.string(value.description)
        case .array(let values): o.array { a in for value in values { member(value, into: &a) } }
        case .dictionary(let members):
            o.object { d in
                for (key, value) in members.sorted(by: { $0.key < $1.key }) {
                    d.key(escaping: key)
                    member(value, into: &d)
                }
            }
        }
    }
}
