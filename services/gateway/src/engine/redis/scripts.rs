//! The Lua scripts of the Redis engine. Each runs atomically on the shard
//! that owns its keys; every key of one script shares one hash tag.
//!
//! Channels are passed as arguments together with the publish command
//! (`PUBLISH` on standalone Redis, `SPUBLISH` on a Redis Cluster, where the
//! channel shares the keys' slot). Published payloads use the header of
//! [`chat_shared::wire`]; `\31` is its separator.

use fred::types::scripts::Script;

use chat_shared::scripts::{PRESENCE_JOIN, PRESENCE_LEAVE, USER_ROOM};

/// Publish a room message: idempotency check, next seq, append to the capped
/// history, publish — one step, so history and live share one order.
///
/// KEYS: seq, history, epoch, client-id key (any key of the room when unused)
/// ARGV: message prefix, history size, client-id TTL in ms (0: no client id),
///       publish command, channel, epoch to create if missing
/// Returns "seq:ts", or the remembered "seq:ts" of a repeated client id.
pub const PUBLISH_ROOM: &str = r#"
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
local result = seq .. ':' .. ts
if ARGV[3] ~= '0' then redis.call('SET', KEYS[4], result, 'PX', ARGV[3]) end
redis.call(ARGV[4], ARGV[5], 'message\31' .. seq .. '\31\31\n' .. json)
return result
"#;

/// Read a room's history window.
///
/// KEYS: seq, history, epoch
/// ARGV: mode ('latest' n | 'after' since | 'before' before limit), a, b,
///       epoch to create if missing
/// Returns {seq, epoch, seq of the first returned message, {messages…}}.
pub const REPLAY: &str = r#"
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[4]
  redis.call('SET', KEYS[3], epoch)
end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = seq - redis.call('LLEN', KEYS[2]) + 1
local from, to
if ARGV[1] == 'latest' then
  from = seq - tonumber(ARGV[2]) + 1
  to = seq
elseif ARGV[1] == 'after' then
  from = tonumber(ARGV[2]) + 1
  to = seq
else
  to = math.min(tonumber(ARGV[2]) - 1, seq)
  from = to - tonumber(ARGV[3]) + 1
end
if from < first then from = first end
local messages = {}
if to >= from then messages = redis.call('LRANGE', KEYS[2], from - first, to - first) end
return {seq, epoch, from, messages}
"#;

/// Store a DM in its conversation: idempotency check, next seq, capped append.
///
/// KEYS: seq, history, client-id key (any key of the conversation when unused)
/// ARGV: dm prefix, history size, client-id TTL in ms (0: none)
/// Returns {seq, ts, json, repeated (0|1), delivered flag of a repeat (0|1)}.
pub const STORE_DM: &str = r#"
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
if ARGV[3] ~= '0' then redis.call('SET', KEYS[3], seq .. ':' .. ts .. ':1', 'PX', ARGV[3]) end
return {seq, ts, json, 0, 1}
"#;

/// Deliver a DM to its recipient, or queue it when no node listens.
///
/// KEYS: the recipient's offline list
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

/// Take (and clear) a user's queued DMs.
///
/// KEYS: the offline list
pub const TAKE_OFFLINE: &str = r#"
local queued = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return queued
"#;

/// Count a connection against the user's cluster-wide limit.
///
/// KEYS: the user's connections hash
/// ARGV: session, node, limit, TTL ms
/// Returns 1 when admitted, 0 when over the limit.
pub const ADMIT: &str = r#"
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"#;

/// One token from the user's cluster-wide rate (a one-second window).
///
/// KEYS: the user's rate key
/// ARGV: frames per second
/// Returns -1 when allowed, else the milliseconds until the window resets.
pub const USER_RATE: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], 1000) end
if n > tonumber(ARGV[1]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 1 then ttl = 1 end
  return ttl
end
return -1
"#;

/// The scripts, with their SHA1s computed once.
pub struct Scripts {
    pub publish_room: Script,
    pub replay: Script,
    pub store_dm: Script,
    pub deliver_dm: Script,
    pub take_offline: Script,
    pub presence_join: Script,
    pub presence_leave: Script,
    pub user_room: Script,
    pub admit: Script,
    pub user_rate: Script,
}

impl Default for Scripts {
    fn default() -> Scripts {
        Scripts {
            publish_room: Script::from_lua(PUBLISH_ROOM),
            replay: Script::from_lua(REPLAY),
            store_dm: Script::from_lua(STORE_DM),
            deliver_dm: Script::from_lua(DELIVER_DM),
            take_offline: Script::from_lua(TAKE_OFFLINE),
            presence_join: Script::from_lua(PRESENCE_JOIN),
            presence_leave: Script::from_lua(PRESENCE_LEAVE),
            user_room: Script::from_lua(USER_ROOM),
            admit: Script::from_lua(ADMIT),
            user_rate: Script::from_lua(USER_RATE),
        }
    }
}
