import NIOCore

/// A value of the Redis serialization protocol, version 2 (RESP2): what a server answers, and
/// what a subscription connection is pushed.
///
///     let reply = try await connection.send(["GET", "k"]).get()
///     if case .bulkString(let bytes?) = reply { … }
public enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    /// An error reply (`-ERR …`): the command failed; the connection is fine.
    case error(String)
    case integer(Int64)
    /// Nil is RESP's null bulk string (`$-1`).
    case bulkString(ByteBuffer?)
    /// Nil is RESP's null array (`*-1`).
    case array([RESPValue]?)

    /// The value as text, for simple and bulk strings.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes?): String(buffer: bytes)
        default: nil
        }
    }

    /// The value as an integer, for integers and for strings that spell one.
    public var int: Int64? {
        switch self {
        case .integer(let value): value
        case .simpleString, .bulkString: string.flatMap { Int64($0) }
        default: nil
        }
    }
}
