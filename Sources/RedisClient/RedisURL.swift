/// Where a Redis server is and how to log in: `redis://[[user]:password@]host[:port][/db]`.
///
///     let url = try RedisURL("redis://:secret@127.0.0.1:6379/2")
public struct RedisURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var database: Int

    public init(host: String, port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// Redis's default address on this machine, database 0.
    public static let local = RedisURL(host: "127.0.0.1")

    public init(_ text: String) throws(RESPError) {
        guard text.hasPrefix("redis://") else {
            throw .badURL(text.hasPrefix("rediss://") ? "TLS (rediss://) is not supported" : "it must start with redis://")
        }
        var rest = Substring(text.dropFirst("redis://".count))
        var path: Substring = ""
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        user = nil
        password = nil
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let name = credentials[..<colon]
                user = name.isEmpty ? nil : String(name)
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        if rest.hasPrefix("[") {
            // An IPv6 literal: [::1]:6379
            guard let close = rest.firstIndex(of: "]") else { throw .badURL("unclosed [ in the host") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            port = 6379
            if !rest.isEmpty {
                guard rest.first == ":", let number = Int(rest.dropFirst()) else { throw .badURL("bad port") }
                port = number
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let number = Int(rest[rest.index(after: colon)...]) else { throw .badURL("bad port") }
            port = number
        } else {
            host = String(rest)
            port = 6379
        }
        guard !host.isEmpty else { throw .badURL("no host") }
        guard (1...65_535).contains(port) else { throw .badURL("port \(port) out of range") }
        if path.isEmpty {
            database = 0
        } else {
            guard let number = Int(path), number >= 0 else { throw .badURL("database must be a number, not '\(path)'") }
            database = number
        }
    }
}
