//! The gateway's own Lua scripts (admission and rates; presence scripts come
//! from `chat_shared::scripts`, history scripts from `history-store`). Each
//! runs atomically on the shard that owns its keys; every key of one script
//! shares one hash tag.
//!
//! Channels are passed as arguments together with the publish command
//! (`PUBLISH` on standalone Redis, `SPUBLISH` on a Redis Cluster, where the
//! channel shares the keys' slot). Published payloads use the header of
//! [`chat_shared::wire`]; `\31` is its separator.

use fred::types::scripts::Script;

use chat_shared::scripts::{PRESENCE_JOIN, PRESENCE_LEAVE, USER_ROOM};

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
    pub presence_join: Script,
    pub presence_leave: Script,
    pub user_room: Script,
    pub admit: Script,
    pub user_rate: Script,
}

impl Default for Scripts {
    fn default() -> Scripts {
        Scripts {
            presence_join: Script::from_lua(PRESENCE_JOIN),
            presence_leave: Script::from_lua(PRESENCE_LEAVE),
            user_room: Script::from_lua(USER_ROOM),
            admit: Script::from_lua(ADMIT),
            user_rate: Script::from_lua(USER_RATE),
        }
    }
}
