import Crypto
import Foundation
import NIOSSL
import PubSubServer
import SwiftASN1
import Testing
import X509

/// `--tls-cert`/`--tls-key`: HTTPS and wss:// on the same port, with a certificate the test
/// makes (P-256, for 127.0.0.1) and trusts.
@Suite("TLS")
struct TLSTests {
    /// A self-signed certificate and its key, written to PEM files.
    static func makeCertificate() throws -> (certificatePath: String, keyPath: String, certificate: NIOSSLCertificate) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("127.0.0.1") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(3_600), issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                SubjectAlternativeNames([.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])), .dnsName("localhost")])
            },
            issuerPrivateKey: .init(key)
        )
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pubsub-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificatePath = directory.appendingPathComponent("cert.pem").path
        let keyPath = directory.appendingPathComponent("key.pem").path
        let certificatePEM = try certificate.serializeAsPEM().pemString
        try certificatePEM.write(toFile: certificatePath, atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(toFile: keyPath, atomically: true, encoding: .utf8)
        return (certificatePath, keyPath, try NIOSSLCertificate(bytes: Array(certificatePEM.utf8), format: .pem))
    }

    /// A client that trusts only `certificate` (the chain is verified; the name is 127.0.0.1).
    static func client(trusting certificate: NIOSSLCertificate) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates([certificate])
        configuration.certificateVerification = .noHostnameVerification
        return try NIOSSLContext(configuration: configuration)
    }

    @Test func httpsAndSecureWebSocketsOnOnePort() async throws {
        let files = try Self.makeCertificate()
        defer { try? FileManager.default.removeItem(atPath: (files.certificatePath as NSString).deletingLastPathComponent) }
        let tls = try Self.client(trusting: files.certificate)
        try await withServer({ $0.tls = .init(certificatePath: files.certificatePath, keyPath: files.keyPath) }) { port, _ in
            let https = TestHTTP(port: port, tls: tls)
            #expect(try await https.get("/api/health").status == 200)
            #expect(try await https.post("/api/topics", json: ["name": "secure"]).status == 201)

            let ws = try await TestWebSocket.connect(port: port, tls: tls)
            #expect(try await ws.next()["msg"] as? String == "connected")
            try await subscribe(ws, "secure")
            #expect(try await https.post("/api/topics/secure/messages", json: ["message": ["over": "tls"]]).status == 200)
            let event = try await ws.next(type: "event")
            #expect((event["message"] as? [String: Any])?["payload"] as? [String: String] == ["over": "tls"])
            await ws.close()

            // A plain-text client gets nothing it can read, and the server stays up.
            let plain = try? await TestHTTP(port: port).get("/api/health")
            #expect(plain?.status != 200)
            #expect(try await https.get("/api/health").status == 200)
        }
    }

    @Test func unreadableFilesStopTheServer() async throws {
        var configuration = ServerConfiguration()
        configuration.tls = .init(certificatePath: "/nonexistent/cert.pem", keyPath: "/nonexistent/key.pem")
        #expect(throws: ServerConfiguration.InvalidSetting.self) { try configuration.validate() }
    }
}
