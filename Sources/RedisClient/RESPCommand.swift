import NIOCore

/// One argument of a command: text or bytes.
///
///     connection.send(["SET", "k", .bytes(payload)])
public enum RESPArgument: Sendable, ExpressibleByStringLiteral {
    case string(String)
    case bytes(ByteBuffer)
    case integer(Int64)

    public init(stringLiteral value: String) { self = .string(value) }
}

extension ByteBuffer {
    /// Appends `arguments` as one RESP command (an array of bulk strings), as Redis reads them.
    public mutating func writeRESPCommand(_ arguments: [RESPArgument]) {
        writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            switch argument {
            case .string(let text):
                writeString("$\(text.utf8.count)\r\n")
                writeString(text)
            case .bytes(let bytes):
                writeString("$\(bytes.readableBytes)\r\n")
                writeImmutableBuffer(bytes)
            case .integer(let value):
                let text = String(value)
                writeString("$\(text.utf8.count)\r\n")
                writeString(text)
            }
            writeStaticString("\r\n")
        }
    }
}
