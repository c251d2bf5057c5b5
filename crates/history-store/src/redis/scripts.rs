//! The history scripts. Each runs atomically on the shard that owns its keys;
//! every key of one script shares one hash tag.
//!
//! Channels are passed as arguments together with the publish command
//! (`PUBLISH` on standalone Redis, `SPUBLISH` on a Redis Cluster, where the
//! channel shares the keys' slot). Published payloads use the header of
//! `chat_shared::wire`; `\31` is its separator. Times come from Redis
//! (`TIME`), so every gateway stamps with one clock.

use fred::types::scripts::Script;

/// Append a room event and publish it: idempotency check, the checks on its
/// target, next seq, capped append, the event's effect (message index,
/// scrubbing, reaction state), retention, publish — one step, so history
/// and live share one order and every check sees the state it changes.
///
/// KEYS: 1 seq, 2 history, 3 epoch, 4 client-id key (any key of the room
///       when unused), 5 messages index, 6 the sender's messages, 7 reactions,
///       8 last message, 9 the reaction fields by message seq
/// ARGV: 1 kind (message|edit|delete|reaction), 2 event prefix, 3 history
///       size, 4 client-id TTL in ms (0: no client id), 5 publish command,
///       6 channel, 7 epoch to create if missing, 8 retention in ms,
///       9 sender id, 10 target or reply_to ('': none), 11 emoji, 12 op,
///       13 most emoji per message, 14 '1' for a moderator (may edit or
///       delete anyone's message)
/// Returns "seq:ts" (or the remembered one of a repeated client id),
/// "unchanged:ts", "not_found", "not_author" or "too_many".
pub const APPEND_ROOM: &str = r#"
if ARGV[4] ~= '0' then
  local previous = redis.call('GET', KEYS[4])
  if previous then return previous end
end
local kind, user, target = ARGV[1], ARGV[9], tonumber(ARGV[10])
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = seq - redis.call('LLEN', KEYS[2]) + 1
if target then
  if target < first or target > seq then return 'not_found' end
  local entry = cjson.decode(redis.call('LINDEX', KEYS[2], target - first))
  if entry.type ~= 'message' or entry.deleted then return 'not_found' end
  if (kind == 'edit' or kind == 'delete') and entry.from.id ~= user and ARGV[14] ~= '1' then
    return 'not_author'
  end
end
local t = redis.call('TIME')
local ts = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
if kind == 'reaction' then
  local emoji = target .. '\31' .. ARGV[11]
  local held = redis.call('HEXISTS', KEYS[7], emoji .. '\31' .. user) == 1
  if ARGV[12] == 'add' and not held and redis.call('HEXISTS', KEYS[7], emoji) == 0
     and tonumber(redis.call('HGET', KEYS[7], target) or '0') >= tonumber(ARGV[13]) then
    return 'too_many'
  end
  if held == (ARGV[12] == 'add') then return 'unchanged:' .. ts end
  -- Every field is also in KEYS[9] under its message's seq, so that the
  -- fields of messages trimmed from the history can be dropped below.
  if held then
    redis.call('HDEL', KEYS[7], emoji .. '\31' .. user)
    redis.call('ZREM', KEYS[9], emoji .. '\31' .. user)
    if redis.call('HINCRBY', KEYS[7], emoji, -1) <= 0 then
      redis.call('HDEL', KEYS[7], emoji)
      redis.call('ZREM', KEYS[9], emoji)
      if redis.call('HINCRBY', KEYS[7], target, -1) <= 0 then
        redis.call('HDEL', KEYS[7], target)
        redis.call('ZREM', KEYS[9], target)
      end
    end
  else
    redis.call('HSET', KEYS[7], emoji .. '\31' .. user, 1)
    redis.call('ZADD', KEYS[9], target, emoji .. '\31' .. user)
    if redis.call('HINCRBY', KEYS[7], emoji, 1) == 1 then
      redis.call('ZADD', KEYS[9], target, emoji)
      if redis.call('HINCRBY', KEYS[7], target, 1) == 1 then redis.call('ZADD', KEYS[9], target, target) end
    end
  end
end
if kind == 'delete' then
  -- The same surgery as chat_shared::protocol::scrub_entry.
  local function scrub(raw)
    if string.sub(raw, 1, 18) ~= '{"type":"message",' and string.sub(raw, 1, 15) ~= '{"type":"edit",' then
      return nil
    end
    local at = string.find(raw, ',"text":"', 1, true)
    if not at then return nil end
    local i, n = at + 9, #raw
    while i <= n do
      local c = string.byte(raw, i)
      if c == 34 then break end
      if c == 92 then i = i + 2 else i = i + 1 end
    end
    local rest = string.sub(raw, i + 1)
    -- Attachments follow the text and go with it: skip the array, strings
    -- (with their escapes) and all.
    if string.sub(rest, 1, 16) == ',"attachments":[' then
      local j, depth, instr, m = 16, 1, false, #rest
      while j < m and depth > 0 do
        j = j + 1
        local c = string.byte(rest, j)
        if instr then
          if c == 92 then j = j + 1 elseif c == 34 then instr = false end
        elseif c == 34 then instr = true
        elseif c == 91 or c == 123 then depth = depth + 1
        elseif c == 93 or c == 125 then depth = depth - 1 end
      end
      if depth > 0 then return nil end
      rest = string.sub(rest, j + 1)
    end
    local s = string.find(rest, ',"seq":', 1, true)
    if not s then return nil end
    return string.sub(raw, 1, at - 1) .. string.sub(rest, 1, s - 1) .. ',"deleted":true' .. string.sub(rest, s)
  end
  local index = target - first
  redis.call('LSET', KEYS[2], index, scrub(redis.call('LINDEX', KEYS[2], index)))
  local mark = ',"target":' .. target .. ',"from":'
  local later = redis.call('LRANGE', KEYS[2], index + 1, -1)
  for i = 1, #later do
    local raw = later[i]
    if string.sub(raw, 1, 15) == '{"type":"edit",' and string.find(raw, mark, 1, true) then
      local scrubbed = scrub(raw)
      if scrubbed then redis.call('LSET', KEYS[2], index + i, scrubbed) end
    end
  end
  redis.call('ZREM', KEYS[5], target)
  redis.call('ZREM', KEYS[6], target)
end
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[3], ARGV[7]) end
seq = redis.call('INCR', KEYS[1])
local json = ARGV[2] .. ',"seq":' .. seq .. ',"ts":' .. ts .. '}'
redis.call('RPUSH', KEYS[2], json)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
local oldest = seq - tonumber(ARGV[3])
if kind == 'message' then
  redis.call('ZADD', KEYS[5], seq, seq)
  redis.call('ZADD', KEYS[6], seq, seq)
  redis.call('SET', KEYS[8], seq)
end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', oldest)
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', oldest)
-- Reactions to messages no longer in the history go with them.
local gone = redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', oldest, 'LIMIT', 0, 1000)
if #gone > 0 then
  redis.call('HDEL', KEYS[7], unpack(gone))
  redis.call('ZREM', KEYS[9], unpack(gone))
end
for i = 1, 9 do
  if i ~= 4 then redis.call('PEXPIRE', KEYS[i], ARGV[8]) end
end
local result = seq .. ':' .. ts
if ARGV[4] ~= '0' then redis.call('SET', KEYS[4], result, 'PX', ARGV[4]) end
redis.call(ARGV[5], ARGV[6], kind .. '\31' .. seq .. '\31\31\n' .. json)
return result
"#;

/// Read a window of a room's or a conversation's history.
///
/// KEYS: seq, history, epoch (for a conversation: the seq key again)
/// ARGV: after (-1: none), before (-1: none), limit,
///       epoch to create if missing ('': no epoch), its TTL in ms for a room
///       with no seq key
/// With `after`, the oldest `limit` messages above it (and below `before`);
/// otherwise the newest `limit` below `before`.
/// A room read before its first message gets its epoch here, so a client
/// that joined it empty resumes in the same history; that epoch lives only
/// the given TTL unless a message comes (the append renews it), so reading
/// any number of names leaves nothing for long.
/// Returns {latest seq, epoch, seq of the first returned message, {messages…}}.
pub const READ: &str = r#"
local epoch = ''
if ARGV[4] ~= '' then
  epoch = redis.call('GET', KEYS[3])
  if not epoch then
    epoch = ARGV[4]
    -- A room with messages but no epoch keeps the new one as long as its seq.
    local ttl = redis.call('PTTL', KEYS[1])
    if ttl < 1 then ttl = tonumber(ARGV[5]) end
    redis.call('SET', KEYS[3], epoch, 'PX', ttl)
  end
end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = seq - redis.call('LLEN', KEYS[2]) + 1
local after, before, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local low, high = first, seq
if after >= 0 and after + 1 > low then low = after + 1 end
if before >= 0 and before - 1 < high then high = before - 1 end
local from, to
if after >= 0 then
  from, to = low, math.min(high, low + limit - 1)
else
  from, to = math.max(low, high - limit + 1), high
end
local messages = {}
if limit > 0 and to >= from then messages = redis.call('LRANGE', KEYS[2], from - first, to - first) end
if from > seq + 1 then from = seq + 1 end
return {seq, epoch, from, messages}
"#;

/// Append a DM to its conversation: idempotency check, next seq, capped
/// append, retention.
///
/// KEYS: seq, history, client-id key (any key of the conversation when
///       unused), the sender's DMs in it
/// ARGV: dm prefix, history size, client-id TTL in ms (0: none), retention in ms
/// Returns {seq, ts, json, repeated (0|1), delivered flag of a repeat (0|1)}.
pub const APPEND_DM: &str = r#"
if ARGV[3] ~= '0' then
  local previous = redis.call('GET', KEYS[3])
  if previous then
    local seq, ts, delivered = string.match(previous, '^(%d+):(%d+):(%d)')
    return {tonumber(seq), ts, '', 1, tonumber(delivered)}
  end
end
local seq = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local ts = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local json = ARGV[1] .. ',"seq":' .. seq .. ',"ts":' .. ts .. '}'
redis.call('RPUSH', KEYS[2], json)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('ZADD', KEYS[4], seq, seq)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', seq - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[4], ARGV[4])
if ARGV[3] ~= '0' then redis.call('SET', KEYS[3], seq .. ':' .. ts .. ':1', 'PX', ARGV[3]) end
return {seq, ts, json, 0, 1}
"#;

/// Deliver a DM to its recipient's nodes, or queue it when none listens.
///
/// KEYS: the recipient's offline queue
/// ARGV: publish command, channel, payload, the dm JSON, queue cap, queue TTL ms
/// Returns how many subscribers got it (0: queued).
pub const DELIVER_DM: &str = r#"
local reached = redis.call(ARGV[1], ARGV[2], ARGV[3])
if reached == 0 then
  redis.call('RPUSH', KEYS[1], ARGV[4])
  redis.call('LTRIM', KEYS[1], -tonumber(ARGV[5]), -1)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
return reached
"#;

/// Remove delivered DMs from an offline queue, each once, wherever they are
/// now (DMs queued meanwhile stay).
///
/// KEYS: the offline queue
/// ARGV: the delivered dm JSONs
/// Returns how many were removed.
pub const ACK_OFFLINE: &str = r#"
local removed = 0
for i = 1, #ARGV do
  removed = removed + redis.call('LREM', KEYS[1], 1, ARGV[i])
end
return removed
"#;

/// A room or conversation as one reader sees it: latest seq, epoch, the
/// reader's cursor and unread count, the latest event's time and the newest
/// message.
///
/// KEYS: 1 seq, 2 history, 3 epoch, 4 messages index, 5 the reader's
///       messages, 6 last message (a conversation passes its seq key for
///       3, 4 and 6: every DM is a message and none is deleted)
/// ARGV: 1 cursor seq, 2 cursor epoch ('*': the room's, whatever it is),
///       3 'room' or 'dm'
/// Returns {seq, epoch, read seq, unread, latest ts (-1: none), last message or nil}.
pub const SUMMARY: &str = r#"
local room = ARGV[3] == 'room'
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local epoch = ''
if room then epoch = redis.call('GET', KEYS[3]) or '' end
local len = redis.call('LLEN', KEYS[2])
local first = seq - len + 1
local cursor = tonumber(ARGV[1])
if room and ARGV[2] ~= '*' and ARGV[2] ~= epoch then cursor = 0 end
if cursor > seq then cursor = seq end
local from = '(' .. math.max(cursor, first - 1)
local unread
if room then
  unread = redis.call('ZCOUNT', KEYS[4], from, '+inf') - redis.call('ZCOUNT', KEYS[5], from, '+inf')
else
  unread = seq - math.max(cursor, first - 1) - redis.call('ZCOUNT', KEYS[5], from, '+inf')
end
if unread < 0 then unread = 0 end
local last_ts, last = -1, false
if len > 0 then
  last_ts = tonumber(string.match(redis.call('LINDEX', KEYS[2], -1), '"ts":(%d+)}$') or '-1')
  local at = seq
  if room then at = tonumber(redis.call('GET', KEYS[6]) or '0') end
  if at >= first then last = redis.call('LINDEX', KEYS[2], at - first) end
end
return {seq, epoch, cursor, unread, last_ts, last}
"#;

/// Create or raise a user's cursor, and cap the user's cursors.
///
/// KEYS: the user's cursors hash, its order set
/// ARGV: field, seq, epoch, 'create' or 'raise', retention in ms, most cursors
/// Returns {cursor seq after, changed (0|1)}.
pub const SET_CURSOR: &str = r#"
local old = redis.call('HGET', KEYS[1], ARGV[1])
local current = -1
if old then
  local s, e = string.match(old, '^(%d+):(.*)$')
  current = tonumber(s or '0')
  if e ~= ARGV[3] then current = 0 end
end
local seq = tonumber(ARGV[2])
if ARGV[4] == 'create' and current >= 0 then return {current, 0} end
if ARGV[4] == 'raise' and current >= seq then return {current, 0} end
redis.call('HSET', KEYS[1], ARGV[1], seq .. ':' .. ARGV[3])
local t = redis.call('TIME')
local score = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Strictly after the newest, so that moves within one millisecond keep their order.
local newest = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) >= score then score = tonumber(newest[2]) + 1 end
redis.call('ZADD', KEYS[2], score, ARGV[1])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[6])
if extra > 0 then
  local dropped = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
  redis.call('HDEL', KEYS[1], unpack(dropped))
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local changed = 1
if ARGV[4] == 'create' then changed = 0 end
return {seq, changed}
"#;

/// A user's cursors, the most recently set or moved first.
///
/// KEYS: the user's cursors hash, its order set
/// ARGV: most cursors
/// Returns {field, value, field, value, …}.
pub const CURSORS: &str = r#"
local order = redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1)
if #order == 0 then return {} end
local values = redis.call('HMGET', KEYS[1], unpack(order))
local out = {}
for i = 1, #order do
  if values[i] then
    out[#out + 1] = order[i]
    out[#out + 1] = values[i]
  end
end
return out
"#;

/// The scripts, with their SHA1s computed once.
pub struct Scripts {
    pub append_room: Script,
    pub read: Script,
    pub append_dm: Script,
    pub deliver_dm: Script,
    pub ack_offline: Script,
    pub summary: Script,
    pub set_cursor: Script,
    pub cursors: Script,
}

impl Default for Scripts {
    fn default() -> Scripts {
        Scripts {
            append_room: Script::from_lua(APPEND_ROOM),
            read: Script::from_lua(READ),
            append_dm: Script::from_lua(APPEND_DM),
            deliver_dm: Script::from_lua(DELIVER_DM),
            ack_offline: Script::from_lua(ACK_OFFLINE),
            summary: Script::from_lua(SUMMARY),
            set_cursor: Script::from_lua(SET_CURSOR),
            cursors: Script::from_lua(CURSORS),
        }
    }
}
