import RedisClient

/// The engine's Lua scripts: each runs atomically in Redis, so two nodes never interleave
/// inside one (docs/scaling.md has the key layout).
///
/// A record is one publication as the cluster keeps and sends it:
/// `<seq> <ts> <id length> <id><payload>` (the payload is raw JSON, byte for byte). Lua's
/// `tostring` writes a seq in digits up to 10^14 (it formats numbers with `%.14g`): a topic
/// would need that many messages to reach it.
/// A channel message is `P<epoch> ` followed by records, each as `<length> <record>`, or
/// `D<epoch>` when the topic was deleted.
enum RedisScripts {
    /// Creates the topic when it does not exist.
    /// KEYS: topics, topic. ARGV: name, now, new epoch, max topics, mode, auto-create (1/0).
    /// Mode `create`: {1, epoch, created} or {0} when it exists.
    /// Mode `ensure` (subscribe): {seq, epoch} of the topic, created if ARGV[6] is 1;
    /// {-1} when it does not exist and is not created.
    /// {-2} when creating it would pass max topics.
    static let ensure = RedisScript(
        """
        local meta = redis.call('HMGET', KEYS[2], 'seq', 'epoch', 'created')
        if meta[2] then
          if ARGV[5] == 'create' then return {0} end
          return {tonumber(meta[1]), meta[2]}
        end
        if ARGV[5] == 'ensure' and ARGV[6] ~= '1' then return {-1} end
        local max = tonumber(ARGV[4])
        if max > 0 and redis.call('HLEN', KEYS[1]) >= max then return {-2} end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('HSET', KEYS[2], 'seq', 0, 'epoch', ARGV[3], 'created', ARGV[2])
        if ARGV[5] == 'create' then return {1, ARGV[3], ARGV[2]} end
        return {0, ARGV[3]}
        """
    )

    /// Publishes messages to a topic as consecutive seqs: appends each to the history
    /// (trimmed to its size) and sends them, as one channel message, to every node.
    /// KEYS: topics, topic, history, published. ARGV: name, channel, history size,
    /// auto-create (1/0), now, new epoch, max topics, then id and payload of each message.
    /// Answers {first seq, epoch}, {-1} when the topic does not exist, {-2} at max topics.
    static let publish = RedisScript(
        """
        local epoch = redis.call('HGET', KEYS[2], 'epoch')
        if not epoch then
          if ARGV[4] ~= '1' then return {-1} end
          local max = tonumber(ARGV[7])
          if max > 0 and redis.call('HLEN', KEYS[1]) >= max then return {-2} end
          epoch = ARGV[6]
          redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
          redis.call('HSET', KEYS[2], 'seq', 0, 'epoch', epoch, 'created', ARGV[5])
        end
        local count = (#ARGV - 7) / 2
        local last = redis.call('HINCRBY', KEYS[2], 'seq', count)
        local size = tonumber(ARGV[3])
        local parts = {'P', epoch, ' '}
        local records = {}
        local seq = last - count
        local ts = ' ' .. ARGV[5] .. ' '
        for i = 8, #ARGV, 2 do
          seq = seq + 1
          local record = tostring(seq) .. ts .. #ARGV[i] .. ' ' .. ARGV[i] .. ARGV[i + 1]
          records[#records + 1] = record
          parts[#parts + 1] = #record .. ' ' .. record
        end
        if size > 0 then
          -- Only what the history keeps, in pieces of at most 1,000 (unpack's limit is the
          -- Lua stack), oldest first so the newest ends up at the head.
          local first = math.max(1, #records - size + 1)
          for from = first, #records, 1000 do
            redis.call('LPUSH', KEYS[3], unpack(records, from, math.min(from + 999, #records)))
          end
          redis.call('LTRIM', KEYS[3], 0, size - 1)
        end
        redis.call('INCRBY', KEYS[4], count)
        redis.call('PUBLISH', ARGV[2], table.concat(parts))
        return {last - count + 1, epoch}
        """
    )

    /// Deletes a topic (its presence list with it) and tells every node. KEYS: topics, topic,
    /// history, presence, presence expiry. ARGV: name, channel.
    /// Answers {seq, epoch, created}, or {} when it does not exist.
    static let delete = RedisScript(
        """
        local meta = redis.call('HMGET', KEYS[2], 'seq', 'epoch', 'created')
        if not meta[2] then return {} end
        redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
        redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('PUBLISH', ARGV[2], 'D' .. meta[2])
        return {tonumber(meta[1]), meta[2], tonumber(meta[3])}
        """
    )

    /// Retained records and the topic's position, read together. KEYS: topic, history.
    /// ARGV: `last` and a count (-1: all), or `after` and a seq.
    /// Answers {seq, epoch, records newest first}, or {} when the topic does not exist.
    static let history = RedisScript(
        """
        local meta = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
        if not meta[2] then return {} end
        local seq = tonumber(meta[1])
        local count = tonumber(ARGV[2])
        if ARGV[1] == 'after' then count = math.max(0, seq - count) end
        local records = {}
        if count < 0 then
          records = redis.call('LRANGE', KEYS[2], 0, -1)
        elseif count > 0 then
          records = redis.call('LRANGE', KEYS[2], 0, count - 1)
        end
        return {seq, meta[2], records}
        """
    )

    /// A node's figures. KEYS: nodes, the node's subscriber counts. ARGV: node id, figures
    /// (`connections subscriptions last_seen version`), expiry of the counts in seconds, mode,
    /// then topic and count pairs. Mode `full`: the pairs are all the counts. Mode `changes`:
    /// only what changed since the last write (count 0: the topic has no subscriber left); {2}
    /// and nothing written when the counts are not there (expired, or Redis lost them), so the
    /// node writes them in full. {1} when written.
    static let heartbeat = RedisScript(
        """
        if ARGV[4] == 'changes' and redis.call('EXISTS', KEYS[2]) == 0 then return {2} end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        if ARGV[4] == 'full' then redis.call('DEL', KEYS[2]) end
        for i = 5, #ARGV, 2 do
          if ARGV[i + 1] == '0' then
            redis.call('HDEL', KEYS[2], ARGV[i])
          else
            redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
          end
        end
        redis.call('EXPIRE', KEYS[2], ARGV[3])
        return {1}
        """
    )

    /// Every topic with its position. KEYS: topics. ARGV: the topic key prefix.
    /// Answers a flat list: name, seq, epoch, created, name, …
    static let list = RedisScript(
        """
        local out = {}
        for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
          local meta = redis.call('HMGET', ARGV[1] .. name, 'seq', 'epoch', 'created')
          if meta[2] then
            out[#out + 1] = name
            out[#out + 1] = tonumber(meta[1])
            out[#out + 1] = meta[2]
            out[#out + 1] = tonumber(meta[3])
          end
        end
        return out
        """
    )
}
