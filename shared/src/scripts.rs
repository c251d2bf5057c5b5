//! Lua scripts that more than one service runs against Redis (the gateway
//! when sessions join and leave, the presence service when it sweeps a
//! crashed gateway). Each touches the keys of one room or one user only, so
//! it runs on one Redis Cluster shard. The layout is in `docs/redis.md`.

use crate::keys;
use crate::protocol::{Member, PresenceState, RoomName, ServerFrame, UserRef, UserStatus};
use crate::wire::Envelope;

/// How long presence state lives without being touched, in milliseconds: if
/// every process dies, nothing stays online forever.
pub const PRESENCE_STATE_TTL_MS: u64 = 24 * 3_600_000;

/// How long a user's `last_seen` is kept, in milliseconds.
pub const LAST_SEEN_TTL_MS: u64 = 30 * 24 * 3_600_000;

/// Record a session in a room; announce `online` on the user's first.
///
/// KEYS: room sessions, room users, room names
/// ARGV: session, user, name, publish command, channel, online payload, TTL ms
pub const PRESENCE_JOIN: &str = r#"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then
    redis.call(ARGV[4], ARGV[5], ARGV[6])
  end
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[7]) end
return 1
"#;

/// Remove a session from a room; announce `offline` after the user's last.
/// Idempotent: a session already gone changes nothing and announces nothing.
///
/// KEYS: room sessions, room users, room names
/// ARGV: session, user, publish command, channel, offline payload
/// Returns 1 when the session was there.
pub const PRESENCE_LEAVE: &str = r#"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[2])
    redis.call('HDEL', KEYS[3], ARGV[2])
    redis.call(ARGV[3], ARGV[4], ARGV[5])
  end
  return 1
end
return 0
"#;

/// Count a session in (or out of) a user's room index.
///
/// KEYS: the user's rooms hash
/// ARGV: room, +1 or -1, TTL ms
pub const USER_ROOM: &str = r#"
if redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"#;

/// A room's online users (sorted by id) with the statuses they set: the
/// names hash and one `HMGET` of [`keys::STATUSES`]. Shared by the gateways'
/// `members` and the presence service's API.
///
/// # Errors
/// Redis's.
pub async fn members_with_status(
    pool: &fred::clients::Pool,
    room: &RoomName,
) -> fred::prelude::FredResult<Vec<Member>> {
    use fred::interfaces::HashesInterface;
    let names: std::collections::HashMap<String, String> = pool.hgetall(keys::room_presence_names(room)).await?;
    let users = keys::members_from_names(names);
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = users.iter().map(|user| user.id.to_string()).collect();
    let statuses: Vec<Option<String>> = pool.hmget(keys::STATUSES, ids).await?;
    Ok(users
        .into_iter()
        .zip(statuses)
        // A value this code did not write reads as no status.
        .map(|(user, json)| Member { user, status: json.and_then(|json| serde_json::from_str(&json).ok()) })
        .collect())
}

/// The pub/sub payload of a `presence` event, for the room's other users
/// (`status`: the user's, for `online`).
pub fn presence_payload(room: &RoomName, user: &UserRef, state: PresenceState, status: Option<UserStatus>) -> String {
    let frame = ServerFrame::Presence { room: room.clone(), user: user.clone(), state, status };
    let json = frame.to_json();
    Envelope {
        kind: "presence",
        seq: None,
        skip_user: Some(user.id.as_str()),
        skip_session: None,
        only_session: None,
        body: &json,
    }
    .encode()
}
