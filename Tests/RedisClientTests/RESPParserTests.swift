import NIOCore
import Testing

@testable import RedisClient

@Suite("RESP parser")
struct RESPParserTests {
    static let samples: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("-ERR unknown command\r\n", .error("ERR unknown command")),
        (":0\r\n", .integer(0)),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(.max)),
        ("$5\r\nhello\r\n", .bulkString(ByteBuffer(string: "hello"))),
        ("$0\r\n\r\n", .bulkString(ByteBuffer())),
        ("$-1\r\n", .bulkString(nil)),
        ("$4\r\na\r\nb\r\n", .bulkString(ByteBuffer(string: "a\r\nb"))),
        ("*0\r\n", .array([])),
        ("*-1\r\n", .array(nil)),
        (
            "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n*2\r\n:1\r\n$-1\r\n",
            .array([.bulkString(ByteBuffer(string: "message")), .bulkString(ByteBuffer(string: "ch")), .array([.integer(1), .bulkString(nil)])])
        ),
    ]

    @Test func everyType() throws {
        for (text, expected) in Self.samples {
            var buffer = ByteBuffer(string: text)
            #expect(try RESPParser().parse(&buffer) == expected, "\(text.debugDescription)")
            #expect(buffer.readableBytes == 0)
        }
    }

    /// A value cut anywhere is nil, and the buffer untouched, until its last byte arrives.
    @Test func valuesSplitAtEveryByte() throws {
        for (text, expected) in Self.samples {
            let bytes = Array(text.utf8)
            for cut in 0..<bytes.count {
                var buffer = ByteBuffer(bytes: bytes[..<cut])
                #expect(try RESPParser().parse(&buffer) == nil, "\(text.debugDescription) cut at \(cut)")
                #expect(buffer.readableBytes == cut)
                buffer.writeBytes(bytes[cut...])
                #expect(try RESPParser().parse(&buffer) == expected)
            }
        }
    }

    @Test func valuesBackToBack() throws {
        var buffer = ByteBuffer(string: Self.samples.map(\.0).joined())
        var values: [RESPValue] = []
        while let value = try RESPParser().parse(&buffer) { values.append(value) }
        #expect(values == Self.samples.map(\.1))
    }

    @Test(arguments: [
        "?x\r\n", ":12a\r\n", ":\r\n", ":99999999999999999999\r\n", "$-2\r\n", "$3\r\nabcde", "+OK\rX",
        "*-5\r\n", "$600000000\r\n",
    ])
    func malformedInputThrows(_ text: String) {
        var buffer = ByteBuffer(string: text)
        #expect(throws: RESPError.self) { try RESPParser().parse(&buffer) }
    }

    @Test func limitsHold() {
        var deep = ByteBuffer(string: String(repeating: "*1\r\n", count: 40) + ":1\r\n")
        #expect(throws: RESPError.self) { try RESPParser().parse(&deep) }
        var long = ByteBuffer(string: "+" + String(repeating: "x", count: RESPParser.maxLineLength + 1))
        #expect(throws: RESPError.self) { try RESPParser().parse(&long) }
        var many = ByteBuffer(string: "*5\r\n")
        #expect(throws: RESPError.self) { try RESPParser(maxArrayCount: 4).parse(&many) }
    }

    @Test func commandsAreArraysOfBulkStrings() throws {
        var buffer = ByteBuffer()
        buffer.writeRESPCommand(["SET", "k", .bytes(ByteBuffer(string: "v\r\n")), .integer(-7)])
        #expect(String(buffer: buffer) == "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n$2\r\n-7\r\n")
        // And they read back as what they are.
        guard case .array(let parts?) = try RESPParser().parse(&buffer) else { Issue.record("not an array"); return }
        #expect(parts.map(\.string) == ["SET", "k", "v\r\n", "-7"])
    }
}

@Suite("Redis URLs")
struct RedisURLTests {
    @Test func forms() throws {
        let plain = try RedisURL("redis://127.0.0.1")
        #expect(plain.host == "127.0.0.1" && plain.port == 6379 && plain.database == 0 && plain.password == nil && plain.user == nil)
        let full = try RedisURL("redis://alice:s3cr:et@redis.local:6380/3")
        #expect(full.host == "redis.local" && full.port == 6380 && full.database == 3)
        #expect(full.user == "alice" && full.password == "s3cr:et")
        let passwordOnly = try RedisURL("redis://:pw@h")
        #expect(passwordOnly.user == nil && passwordOnly.password == "pw")
        let ipv6 = try RedisURL("redis://[::1]:7000/1")
        #expect(ipv6.host == "::1" && ipv6.port == 7000 && ipv6.database == 1)
    }

    @Test(arguments: ["http://h", "rediss://h", "redis://", "redis://h:0", "redis://h:x", "redis://h/x", "redis://h/-1", "redis://[::1"])
    func refused(_ text: String) {
        #expect(throws: RESPError.self) { try RedisURL(text) }
    }
}
