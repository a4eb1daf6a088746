import NIOCore
import PubSubCore
import RedisClient
import Synchronization

/// Presence across the cluster, kept as Centrifuge keeps it: per topic, a hash of entries by
/// client id and a sorted set of their expiry times. Each node refreshes its own entries every
/// heartbeat, so the entries of a node that died expire (after the node expiry) and whoever
/// reads or refreshes the topic next removes them, telling the cluster they left. Joins and
/// leaves go to every node on the topic's channel (`RJ<entry>`, `RL<entry>`), in the order
/// Redis ran them.
extension RedisBroker {
    public func joinPresence(topic name: String, entry: PresenceEntry) -> BrokerAnswer<Void> {
        do { try TopicName.validate(name) } catch { return .failure(error) }
        let record = RedisPresenceRecord.encode(entry)
        // Recorded and sent under one lock, as leaves and refreshes are: Redis runs them in
        // the order the node's record changed.
        let sent = presenceLocal.withLock { entries in
            entries[name, default: [:]][entry.clientID] = entry
            return runPresence(name, "join", [.string(entry.clientID), .bytes(record)])
        }
        let future = sent.flatMapThrowing { value throws -> Void in
            guard try Self.array(value).first?.int == 1 else { throw PubSubError.topicNotFound(name) }
        }
        future.whenFailure { _ in
            self.presenceLocal.withLock { entries in self.forget(name, entry, in: &entries) }
        }
        return .later(future)
    }

    public func leavePresence(topic name: String, clientID: String) {
        presenceLocal.withLock { entries in
            guard entries[name]?.removeValue(forKey: clientID) != nil else { return }
            if entries[name]?.isEmpty == true { entries[name] = nil }
            // (Its answer does not matter: an entry Redis still holds expires.)
            _ = runPresence(name, "leave", [.string(clientID)])
        }
    }

    public func presence(topic name: String) -> BrokerAnswer<[PresenceEntry]> {
        do { try TopicName.validate(name) } catch { return .failure(error) }
        return .later(
            runPresence(name, "list", []).flatMapThrowing { value throws -> [PresenceEntry] in
                let answer = try Self.array(value)
                guard answer.first?.int == 1 else { throw PubSubError.topicNotFound(name) }
                return try answer.dropFirst().map { field throws(PubSubError) in
                    guard case .bulkString(let bytes?) = field, let entry = RedisPresenceRecord.decode(bytes) else { throw Self.malformed(value) }
                    return entry
                }.presenceOrdered()
            }
        )
    }

    /// Runs the presence script for `name` in `mode` (see ``RedisPresenceRecord/script``).
    private func runPresence(_ name: String, _ mode: RESPArgument, _ rest: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        run(RedisPresenceRecord.script, keys: presenceKeys(name), arguments: presenceArguments(mode, channel: .string(keys.events(name))) + rest)
    }

    /// Runs the presence script's `touch` for the topics of `batch`, in one call.
    private func runPresenceTouch(_ batch: [(name: String, local: [String: PresenceEntry])]) -> EventLoopFuture<RESPValue> {
        var keys: [RESPArgument] = []
        var arguments = presenceArguments("touch", channel: "")
        for (name, local) in batch {
            keys += presenceKeys(name)
            arguments += [.string(self.keys.events(name)), .integer(Int64(local.count))]
            arguments += local.keys.map { .string($0) }
        }
        return run(RedisPresenceRecord.script, keys: keys, arguments: arguments)
    }

    /// The presence script's KEYS for one topic: presence hash, expiry set, topic.
    private func presenceKeys(_ name: String) -> [RESPArgument] {
        [.string(keys.presence(name)), .string(keys.presenceExpiry(name)), .string(keys.topic(name))]
    }

    /// The presence script's first ARGV: mode, channel, now, expiry time, key lifetime (ms).
    private func presenceArguments(_ mode: RESPArgument, channel: RESPArgument) -> [RESPArgument] {
        let now = WallClock.nowMillis()
        let expiry = Int64(configuration.nodeExpirySeconds * 1000)
        return [mode, channel, .integer(now), .integer(now + expiry), .integer(3 * expiry)]
    }

    /// The topic is gone (deleted, or another incarnation): this node's entries went with its
    /// list, and refreshing them would write them into a topic made again under the same name.
    func forgetPresence(of name: String) {
        presenceLocal.withLock { entries in _ = entries.removeValue(forKey: name) }
    }

    private func forget(_ name: String, _ entry: PresenceEntry, in entries: inout [String: [String: PresenceEntry]]) {
        guard entries[name]?[entry.clientID] == entry else { return }
        entries[name]![entry.clientID] = nil
        if entries[name]!.isEmpty { entries[name] = nil }
    }

    // MARK: the node's refresh

    /// Every heartbeat: this node's entries are given a new expiry, and the topics' expired
    /// entries removed. Only the client ids travel, many topics to a script call, and Redis
    /// moves their expiry in one command per topic; the entries themselves are written again
    /// only when some were missing (they expired while Redis was out of reach, or Redis lost
    /// them).
    func startPresenceRefresh() {
        let interval = TimeAmount.nanoseconds(Int64(configuration.heartbeatSeconds * 1e9))
        let loop = self.loop
        let task = loop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { [weak self] _ in
            guard let self else { return loop.makeSucceededVoidFuture() }
            return self.refreshPresence()
        }
        presenceRefresh.withLock(of: self) { $0 = task }
    }

    func stopPresenceRefresh() {
        presenceRefresh.withLock(of: self) { task in
            task?.cancel()
            task = nil
        }
    }

    private func refreshPresence() -> EventLoopFuture<Void> {
        let sent = presenceLocal.withLock { entries in
            RedisPresenceRecord.touchBatches(entries).map { batch in
                runPresenceTouch(batch).flatMap { self.settleTouch(batch, answers: (try? Self.array($0)) ?? []) }
            }
        }
        return EventLoopFuture.whenAllComplete(sent, on: loop).map { _ in }
    }

    /// What each topic's answer to `touch` asks for: 0, the topic is gone (forget what was
    /// sent); 2, some entries were missing (write that topic's again).
    private func settleTouch(_ batch: [(name: String, local: [String: PresenceEntry])], answers: [RESPValue]) -> EventLoopFuture<Void> {
        var rewrites: [EventLoopFuture<Void>] = []
        for ((name, local), answer) in zip(batch, answers) {
            switch answer.int {
            case 0: forgetSent(name, local)
            case 2: rewrites.append(rewritePresence(name))
            default: break
            }
        }
        return EventLoopFuture.whenAllComplete(rewrites, on: loop).map { _ in }
    }

    /// Writes this node's entries of `name` again, records and all (the joins of those that
    /// were missing go to every node), under the lock that orders joins and leaves.
    private func rewritePresence(_ name: String) -> EventLoopFuture<Void> {
        presenceLocal.withLock { entries in
            guard let local = entries[name] else { return loop.makeSucceededVoidFuture() }
            let arguments = local.values.flatMap { entry in [RESPArgument.string(entry.clientID), .bytes(RedisPresenceRecord.encode(entry))] }
            return runPresence(name, "refresh", arguments).map { value in
                guard (try? Self.array(value))?.first?.int == 0 else { return }
                self.forgetSent(name, local)
            }
        }
    }

    /// The topic is gone: so is what this node recorded of it (the entries sent, not any that
    /// joined since, which were refused or will be).
    private func forgetSent(_ name: String, _ sent: [String: PresenceEntry]) {
        presenceLocal.withLock { entries in
            for entry in sent.values { forget(name, entry, in: &entries) }
        }
    }

    /// A presence diff on a topic's channel, for the topic's sink (on the engine's loop).
    func receivedPresence(_ payload: ByteBuffer, feed: RedisTopicFeed) {
        var payload = payload
        guard payload.readInteger(as: UInt8.self) == UInt8(ascii: "R"), let kind = payload.readInteger(as: UInt8.self),
            let entry = RedisPresenceRecord.decode(payload)
        else { return }
        switch kind {
        case UInt8(ascii: "J"): feed.sink.presenceChanged(PresenceDiff(topic: feed.name, joins: [entry]))
        case UInt8(ascii: "L"): feed.sink.presenceChanged(PresenceDiff(topic: feed.name, leaves: [entry]))
        default: break
        }
    }
}

/// What a node has put in the cluster's presence lists, by topic and client id.
final class RedisPresenceLocal: Sendable {
    private let entries = Mutex<[String: [String: PresenceEntry]]>([:])

    func withLock<Result: Sendable>(_ body: (inout [String: [String: PresenceEntry]]) -> Result) -> Result {
        entries.withLock(of: self) { body(&$0) }
    }
}

/// An entry as the cluster keeps and sends it, `<joined_at> <client id length> <client id>`
/// then `+<user>` or `-` (no user), and the script that keeps the lists.
enum RedisPresenceRecord {
    static func encode(_ entry: PresenceEntry) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString("\(entry.joinedAtMillis) \(entry.clientID.utf8.count) \(entry.clientID)")
        if let user = entry.user {
            buffer.writeString("+\(user)")
        } else {
            buffer.writeString("-")
        }
        return buffer
    }

    static func decode(_ buffer: ByteBuffer) -> PresenceEntry? {
        var buffer = buffer
        guard let joinedAt = buffer.readDecimal(until: UInt8(ascii: " ")),
            let length = buffer.readDecimal(until: UInt8(ascii: " ")), length <= buffer.readableBytes,
            let clientID = buffer.readString(length: Int(length)), let flag = buffer.readInteger(as: UInt8.self)
        else { return nil }
        switch flag {
        case UInt8(ascii: "+"):
            return PresenceEntry(clientID: clientID, user: buffer.readString(length: buffer.readableBytes) ?? "", joinedAtMillis: Int64(clamping: joinedAt))
        case UInt8(ascii: "-") where buffer.readableBytes == 0:
            return PresenceEntry(clientID: clientID, user: nil, joinedAtMillis: Int64(clamping: joinedAt))
        default:
            return nil
        }
    }

    /// A refresh's topics in batches of about `ids` client ids (a topic's ids are never split),
    /// each one call of `touch`.
    static func touchBatches(
        _ entries: [String: [String: PresenceEntry]], ids: Int = 1000
    ) -> [[(name: String, local: [String: PresenceEntry])]] {
        var batches: [[(name: String, local: [String: PresenceEntry])]] = []
        var batch: [(name: String, local: [String: PresenceEntry])] = []
        var size = 0
        for (name, local) in entries {
            batch.append((name, local))
            size += local.count + 1
            if size >= ids {
                batches.append(batch)
                batch = []
                size = 0
            }
        }
        if !batch.isEmpty { batches.append(batch) }
        return batches
    }

    /// KEYS: presence hash, expiry set, topic. ARGV: mode, channel, now, expiry time, key
    /// lifetime (ms), then the mode's own:
    /// `join` client id, entry: {1}, or {0} when the topic does not exist;
    /// `leave` client id: 1 when it was there, else 0;
    /// `list`: {1, entry…} after removing the expired ones, or {0};
    /// `refresh` (client id, entry)…: {1}, or {0} when the topic is gone;
    /// `touch`, for any number of topics, whose KEYS come in threes (no channel in ARGV[2]), then
    /// per topic its channel, how many client ids, and the ids: their expiry moved (only where
    /// they are there). Answers per topic 1, 2 when some were not there (the node then sends
    /// `refresh`), or 0 when the topic is gone.
    /// One script for all five: its first run loads it, and calls made meanwhile are run in
    /// the order they were sent (with a script each, a first call's load could let a later
    /// call of another script overtake it).
    static let script = RedisScript(
        """
        local function expire(entries, expiries, channel)
          local gone = redis.call('ZRANGEBYSCORE', expiries, '-inf', ARGV[3])
          for _, id in ipairs(gone) do
            local old = redis.call('HGET', entries, id)
            redis.call('HDEL', entries, id)
            redis.call('ZREM', expiries, id)
            if old then redis.call('PUBLISH', channel, 'RL' .. old) end
          end
        end
        local function put(id, entry)
          local old = redis.call('HGET', KEYS[1], id)
          redis.call('HSET', KEYS[1], id, entry)
          redis.call('ZADD', KEYS[2], ARGV[4], id)
          if old ~= entry then
            if old then redis.call('PUBLISH', ARGV[2], 'RL' .. old) end
            redis.call('PUBLISH', ARGV[2], 'RJ' .. entry)
          end
        end
        local function keep(entries, expiries)
          redis.call('PEXPIRE', entries, ARGV[5])
          redis.call('PEXPIRE', expiries, ARGV[5])
        end
        local mode = ARGV[1]
        if mode == 'touch' then
          local answer, a = {}, 6
          for t = 1, #KEYS, 3 do
            local channel, count = ARGV[a], tonumber(ARGV[a + 1])
            a = a + 2
            if redis.call('EXISTS', KEYS[t + 2]) == 0 then
              redis.call('DEL', KEYS[t], KEYS[t + 1])
              answer[#answer + 1] = 0
            else
              -- In chunks: unpack() takes at most some thousands of values.
              local touched, chunk = 0, {}
              for i = a, a + count - 1 do
                chunk[#chunk + 1] = ARGV[4]
                chunk[#chunk + 1] = ARGV[i]
                if #chunk == 2000 or i == a + count - 1 then
                  touched = touched + redis.call('ZADD', KEYS[t + 1], 'XX', 'CH', unpack(chunk))
                  chunk = {}
                end
              end
              expire(KEYS[t], KEYS[t + 1], channel)
              keep(KEYS[t], KEYS[t + 1])
              answer[#answer + 1] = touched < count and 2 or 1
            end
            a = a + count
          end
          return answer
        end
        if mode == 'leave' then
          local old = redis.call('HGET', KEYS[1], ARGV[6])
          if not old then return 0 end
          redis.call('HDEL', KEYS[1], ARGV[6])
          redis.call('ZREM', KEYS[2], ARGV[6])
          redis.call('PUBLISH', ARGV[2], 'RL' .. old)
          return 1
        end
        if redis.call('EXISTS', KEYS[3]) == 0 then
          redis.call('DEL', KEYS[1], KEYS[2])
          return {0}
        end
        if mode == 'join' then
          put(ARGV[6], ARGV[7])
          keep(KEYS[1], KEYS[2])
          return {1}
        elseif mode == 'list' then
          expire(KEYS[1], KEYS[2], ARGV[2])
          local answer = redis.call('HVALS', KEYS[1])
          table.insert(answer, 1, 1)
          return answer
        elseif mode == 'refresh' then
          for i = 6, #ARGV, 2 do put(ARGV[i], ARGV[i + 1]) end
          expire(KEYS[1], KEYS[2], ARGV[2])
          keep(KEYS[1], KEYS[2])
          return {1}
        end
        return redis.error_reply('unknown presence mode ' .. mode)
        """
    )
}

extension RedisKeys {
    func presence(_ name: String) -> String { "\(prefix):presence:\(name)" }
    func presenceExpiry(_ name: String) -> String { "\(prefix):presence-expiry:\(name)" }
}
