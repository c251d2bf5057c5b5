//! The history scripts. Each runs atomically on the shard that owns its keys;
//! every key of one script shares one hash tag.
//!
//! Channels are passed as arguments together with the publish command
//! (`PUBLISH` on standalone Redis, `SPUBLISH` on a Redis Cluster, where the
//! channel shares the keys' slot). Published payloads use the header of
//! `chat_shared::wire`; `\31` is its separator. Times come from Redis
//! (`TIME`), so every gateway stamps with one clock.

use fred::types::scripts::Script;

/// Append a room message and publish it: idempotency check, next seq, capped
/// append, retention, publish — one step, so history and live share one order.
///
/// KEYS: seq, history, epoch, client-id key (any key of the room when unused)
/// ARGV: message prefix, history size, client-id TTL in ms (0: no client id),
///       publish command, channel, epoch to create if missing, retention in ms
/// Returns "seq:ts", or the remembered "seq:ts" of a repeated client id.
pub const APPEND_ROOM: &str = r#"
if ARGV[3] ~= '0' then
  local previous = redis.call('GET', KEYS[4])
  if previous then return previous end
end
if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[3], ARGV[6]) end
local seq = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local ts = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local json = ARGV[1] .. ',"seq":' .. seq .. ',"ts":' .. ts .. '}'
redis.call('RPUSH', KEYS[2], json)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[7])
local result = seq .. ':' .. ts
if ARGV[3] ~= '0' then redis.call('SET', KEYS[4], result, 'PX', ARGV[3]) end
redis.call(ARGV[4], ARGV[5], 'message\31' .. seq .. '\31\31\n' .. json)
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
/// KEYS: seq, history, client-id key (any key of the conversation when unused)
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
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
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

/// The scripts, with their SHA1s computed once.
pub struct Scripts {
    pub append_room: Script,
    pub read: Script,
    pub append_dm: Script,
    pub deliver_dm: Script,
    pub ack_offline: Script,
}

impl Default for Scripts {
    fn default() -> Scripts {
        Scripts {
            append_room: Script::from_lua(APPEND_ROOM),
            read: Script::from_lua(READ),
            append_dm: Script::from_lua(APPEND_DM),
            deliver_dm: Script::from_lua(DELIVER_DM),
            ack_offline: Script::from_lua(ACK_OFFLINE),
        }
    }
}
