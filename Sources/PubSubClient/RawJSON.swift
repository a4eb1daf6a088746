import Foundation

/// A JSON value as text, sent and received byte for byte.
///
/// Events carry their payload as `RawJSON`, exactly as it was published; decode it into your
/// own type, or publish text you already have without re-encoding it:
///
/// ```swift
/// struct Order: Codable { var total: Int }
/// for try await element in try await client.subscribe("orders") {
///     if case .event(let event) = element {
///         let order = try event.payload.decode(Order.self)
///     }
/// }
/// try await client.publish("orders", try RawJSON(#"{"total":12}"#))
/// ```
public struct RawJSON: Sendable, Hashable, CustomStringConvertible {
    /// The JSON text.
    public let text: String

    /// Checks that `text` is one JSON value (any but `null`'s absence: `null` itself is valid
    /// JSON, and the server refuses it as a message).
    public init(_ text: String) throws {
        guard (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: .fragmentsAllowed)) != nil else {
            throw PubSubClientError.invalidMessage("not a JSON value: \(text.prefix(80))")
        }
        self.text = text
    }

    /// Text the server sent, valid by construction.
    init(trusted text: String) {
        self.text = text
    }

    /// `value` encoded with `JSONEncoder`.
    public init(encoding value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let data = try encoder.encode(value)
        self.text = String(decoding: data, as: UTF8.self)
    }

    /// Decodes the text with `JSONDecoder`.
    public func decode<T: Decodable>(_ type: T.Type, using decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(type, from: Data(text.utf8))
    }

    public var description: String { text }
}

extension RawJSON: Encodable {
    /// Encodes the value the text holds, for an app that puts a payload into its own `Encodable`
    /// types. (The client itself sends the text as it is.)
    public func encode(to encoder: any Encoder) throws {
        try JSONTree(text).encode(to: encoder)
    }
}

extension RawJSON: Decodable {
    /// Decodes any JSON value and keeps it as compact text.
    public init(from decoder: any Decoder) throws {
        let tree = try JSONTree(from: decoder)
        self.text = String(decoding: try JSONEncoder().encode(tree), as: UTF8.self)
    }
}

/// A JSON value as a tree, only for `RawJSON`'s Codable conformance.
private enum JSONTree: Codable {
    case null, bool(Bool), int(Int), double(Double), string(String), array([JSONTree]), object([String: JSONTree])

    init(_ text: String) throws {
        self = try JSONDecoder().decode(JSONTree.self, from: Data(text.utf8))
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONTree].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONTree].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
