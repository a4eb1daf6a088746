import HTTPTypes
import Hummingbird
import NIOCore
import PubSubCore
import PubSubProtocol

extension RESTRoutes {
    /// `GET /api/topics/{name}/presence` (SPEC 9): the topic's subscribers, the cluster's with
    /// the Redis engine, oldest subscription first.
    func presence(_ name: String) async throws -> Response {
        let entries = try await broker.presence(topic: name).get()
        var json = JSONWriter(frame: false, capacity: 64 + 112 * entries.count)
        json.object { o in
            o.key("topic"); o.plainString(name)
            o.member("count", entries.count)
            o.key("presence"); o.presenceEntries(entries)
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: json.finish()))
    }
}
