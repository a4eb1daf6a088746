// The client-token check (SPEC 7), on tokens as anyone who reaches the port can send them.
// Byte 0 picks what the rest of the input is:
//
// - 0: the whole token, as sent. It is refused with UNAUTHORIZED, never a crash, and a token
//   that is granted must be one this run could have signed.
// - 1: a JWT payload, signed HS256 with the server's secret. Granted only when its `exp` is a
//   number in the future; the same token with one signature bit flipped is refused.
// - 2: a header, with a valid payload, signed with the secret: granted only when the header
//   names HS256.
// - 3: claims built from the bytes (user, patterns, admin, expiry), minted as `pubsub token`
//   mints them: granted exactly when every pattern parses and the token has not expired, and
//   the grant holds those claims.
import Crypto
import Dispatch
import Foundation
import FuzzSupport
import PubSubAuth
import PubSubCore

let secret = "fuzz-secret-that-is-at-least-32-bytes-long"
let authenticator = try! Authenticator(.init(jwtSecret: secret, apiKeys: ["fuzz-api-key"]))

/// A value carried out of the task that made it, to the fuzzer's thread that waits for it.
final class Outcome<Value>: @unchecked Sendable {
    var value: Value?
}

/// Runs `work` to its end and answers its value. libFuzzer's entry point is synchronous and
/// runs on a thread of its own, not on the pool the task runs on, so waiting here is safe.
func blocking<Value>(_ work: @escaping @Sendable () async -> Value) -> Value {
    let outcome = Outcome<Value>()
    let done = DispatchSemaphore(value: 0)
    Task {
        outcome.value = await work()
        done.signal()
    }
    done.wait()
    return outcome.value!
}

func grant(_ token: String) -> Result<Grant, PubSubError> {
    blocking {
        do throws(PubSubError) {
            return .success(try await authenticator.grant(for: token))
        } catch {
            return .failure(error)
        }
    }
}

/// A token with `claims`, as `pubsub token` makes it.
func mint(_ claims: Authenticator.Claims) -> String {
    // Minting fails only for claims JSON cannot hold, and none are built here.
    blocking { try! await Authenticator.mint(claims, secret: secret) }
}

func base64URL(_ bytes: some DataProtocol) -> String {
    Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

/// `header.payload.signature`, signed HS256 with `secret` whatever the header says.
func signed(header: [UInt8], payload: [UInt8]) -> String {
    let input = base64URL(header) + "." + base64URL(payload)
    let signature = HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: Data(secret.utf8)))
    return input + "." + base64URL(Data(signature))
}

func requireRefused(_ result: Result<Grant, PubSubError>, _ what: String) {
    switch result {
    case .success: require(false, "\(what) was granted")
    case .failure(let error): require(error.code == .unauthorized, "\(what) failed with \(error.code), not UNAUTHORIZED")
    }
}

struct Expiry: Decodable { let exp: Double }

func nowSeconds() -> Double { Date().timeIntervalSince1970 }
let validHeader = Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)

/// The bytes as text, with a cap on the length: names and patterns from the fuzzer's bytes.
func text(_ input: inout FuzzInput, upTo limit: UInt8) -> String {
    let count = Int(input.byte() % limit)
    return String(decoding: (0..<count).map { _ in input.byte() }, as: UTF8.self)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    switch input.byte() % 4 {
    case 0:
        let token = String(decoding: input.rest, as: UTF8.self)
        if case .success = grant(token) {
            // Only the API key is valid without a signature this run made.
            require(token == "fuzz-api-key", "an unsigned token was granted: \(token.debugDescription)")
        }
    case 1:
        let payload = input.rest
        let token = signed(header: validHeader, payload: payload)
        if case .success(let granted) = grant(token) {
            // JSONDecoder, as jwt-kit reads payloads: JSONSerialization refuses control
            // characters in strings that JSONDecoder lets through.
            let exp = (try? JSONDecoder().decode(Expiry.self, from: Data(payload)))?.exp
            require(exp.map { $0 > nowSeconds() - 1 } ?? false, "granted a payload without a future exp: \(payload)")
            require(granted.expiresAtMillis != nil, "a token's grant has no expiry")
            var tampered = Array(token.utf8)
            let last = tampered.count - 2  // inside the signature, whose last character has spare bits
            tampered[last] = tampered[last] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            requireRefused(grant(String(decoding: tampered, as: UTF8.self)), "a token with a changed signature")
        }
    case 2:
        let header = input.rest
        let payload = Array(#"{"exp":\#(Int(nowSeconds()) + 3600),"admin":true}"#.utf8)
        if case .success = grant(signed(header: header, payload: payload)) {
            let object = try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any]
            require(object?["alg"] as? String == "HS256", "granted a token whose header is \(header)")
        }
    default:
        let user = input.byte() & 1 == 0 ? nil : text(&input, upTo: 16)
        let subscribe = (0..<Int(input.byte() % 4)).map { _ in text(&input, upTo: 12) }
        let publish = (0..<Int(input.byte() % 4)).map { _ in text(&input, upTo: 12) }
        let admin: Bool? = [nil, false, true][Int(input.byte() % 3)]
        // From an hour ago to an hour from now, never within 10 s of now (the check takes time).
        let offset = (Double(input.byte() % 120) - 60) * 60 + (input.byte() & 1 == 0 ? -10 : 10)
        let claims = Authenticator.Claims(
            sub: user, expires: Date(timeIntervalSince1970: nowSeconds() + offset), subscribe: subscribe, publish: publish, admin: admin)
        let result = grant(mint(claims))
        let valid = offset > 0 && (subscribe + publish).allSatisfy { TopicPattern($0) != nil }
        switch result {
        case .success(let granted):
            require(valid, "granted claims that are \(offset > 0 ? "current" : "expired") with patterns \(subscribe + publish)")
            require(granted.user == user, "user \(String(describing: granted.user)), not \(String(describing: user))")
            require(granted.subscribe.map(\.description) == subscribe, "subscribe \(granted.subscribe), not \(subscribe)")
            require(granted.publish.map(\.description) == publish, "publish \(granted.publish), not \(publish)")
            require(granted.admin == (admin ?? false), "admin \(granted.admin), not \(String(describing: admin))")
        case .failure(let error):
            require(!valid, "refused valid claims (\(error.message)): user \(String(describing: user)), patterns \(subscribe + publish)")
            require(error.code == .unauthorized, "failed with \(error.code), not UNAUTHORIZED")
        }
    }
    return 0
}
