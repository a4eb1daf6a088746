import Testing

@testable import PubSubCore
@testable import PubSubProtocol

/// The upgrade request's handshake headers: every malformed form is a `BAD_REQUEST` (the server
/// answers 400), never a crash; well-formed offers we cannot honour are declined, not refused.
@Suite("WebSocket handshake headers")
struct WebSocketHandshakeTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    static func offers(_ header: String) throws -> [WebSocketExtension] {
        try WebSocketExtension.parseList(header)
    }

    @Test(arguments: [
        "permessage-deflate;=",  // the request that used to kill the server
        "permessage-deflate;", "permessage-deflate;;", ";", "=", ";=", "permessage-deflate; =15",
        "permessage-deflate; a=", "permessage-deflate; a= ;", "permessage-deflate; a=\"", "permessage-deflate; a=\"\"",
        "permessage-deflate; a=\"b c\"", "permessage-deflate; a=\"x\\", "permessage-deflate x", "perm@essage-deflate",
        "permessage-deflate; a=b=c", "permessage-deflate; a b", "permessage-déflate", "permessage-deflate; a=\u{1}",
        "permessage-deflate, ;", "\"permessage-deflate\"",
    ])
    func malformedExtensionHeadersAreBadRequests(header: String) {
        let error = #expect(throws: PubSubError.self) { try Self.offers(header) }
        #expect(error?.code == .badRequest)
        #expect(error?.message.hasPrefix("Sec-WebSocket-Extensions") == true)
    }

    @Test func wellFormedListsParse() throws {
        #expect(try Self.offers("") == [])
        #expect(try Self.offers(" , ,") == [])
        #expect(
            try Self.offers("permessage-deflate; client_max_window_bits, permessage-deflate ;server_max_window_bits = \"15\";client_no_context_takeover,,x-webkit-deflate-frame")
                == [
                    WebSocketExtension("permessage-deflate", [.init("client_max_window_bits")]),
                    WebSocketExtension(
                        "permessage-deflate", [.init("server_max_window_bits", "15"), .init("client_no_context_takeover")]
                    ),
                    WebSocketExtension("x-webkit-deflate-frame"),
                ]
        )
        #expect(try Self.offers("a; b=\"c\\d\"") == [WebSocketExtension("a", [.init("b", "cd")])], "a quoted-pair unquotes")
    }

    @Test func negotiationTakesTheFirstOfferItCanHonour() throws {
        func negotiate(_ header: String) throws -> String? { PerMessageDeflate.negotiate(offers: try Self.offers(header)) }
        let plain = "permessage-deflate; server_no_context_takeover"
        let noClientTakeover = plain + "; client_no_context_takeover"
        #expect(try negotiate("permessage-deflate") == plain)
        #expect(try negotiate("permessage-deflate; client_max_window_bits") == plain)
        #expect(try negotiate("permessage-deflate; client_max_window_bits=9; client_no_context_takeover") == noClientTakeover)
        #expect(try negotiate("permessage-deflate; server_max_window_bits=15; server_no_context_takeover") == plain)
        // Declined (RFC 7692 7.1): values out of range, a window we cannot compress with,
        // repeated or unknown parameters, values where none is allowed.
        for declined in [
            "permessage-deflate; server_max_window_bits=10", "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=16", "permessage-deflate; client_max_window_bits=08",
            "permessage-deflate; client_max_window_bits=7", "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover=1", "permessage-deflate; mystery", "x-webkit-deflate-frame",
        ] {
            #expect(try negotiate(declined) == nil, "\(declined)")
        }
        #expect(try negotiate("permessage-deflate; mystery, permessage-deflate; client_no_context_takeover") == noClientTakeover)
    }

    @Test func keysMustBeTheBase64OfSixteenBytes() {
        #expect(WebSocketHandshake.isValidKey(Self.key))
        #expect(WebSocketHandshake.isValidKey("AAAAAAAAAAAAAAAAAAAAAA=="))
        #expect(WebSocketHandshake.isValidKey("/+/+/+/+/+/+/+/+/+/+/w=="))
        for bad in ["", "abc", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZR==", "dGhlIHNhbXBsZSBub25j*Q==",
            "dGhlIHNhbXBsZSBub25jZQ==dGhl", "dGhlIHNhbXBsZSBub25jZ===",
        ] {
            #expect(!WebSocketHandshake.isValidKey(bad), "\(bad)")
        }
    }

    @Test func keyAndVersionAppearOnceEach() throws {
        #expect(try WebSocketHandshake.check(keys: [Self.key], versions: ["13"], extensions: ["permessage-deflate"]).count == 1)
        let wrong: [([String], [String])] = [
            ([], ["13"]), ([Self.key, Self.key], ["13"]), (["abc"], ["13"]),
            ([Self.key], []), ([Self.key], ["13", "13"]), ([Self.key], ["8"]), ([Self.key], ["13x"]), ([Self.key], [""]),
        ]
        for (keys, versions) in wrong {
            #expect(throws: PubSubError.self, "\(keys) \(versions)") {
                try WebSocketHandshake.check(keys: keys, versions: versions, extensions: [])
            }
        }
        #expect(throws: PubSubError.self) { try WebSocketHandshake.check(keys: [Self.key], versions: ["13"], extensions: ["permessage-deflate;="]) }
    }
}
