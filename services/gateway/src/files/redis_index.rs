//! The file index on Redis, shared by every gateway.
//!
//! - `chat:{r:ROOM}:file:ID`, a hash: `uploader`, `name`, `type`, `size`,
//!   `created`, `message` (the seq, once bound) and `claim` (`-`, or `c:` and
//!   the `client_id` of the send that holds it). It expires with the file:
//!   an hour (and a minute) after an unreferenced upload, the history's
//!   retention after it is bound.
//! - `chat:{r:ROOM}:msgfiles:SEQ`, a set: the files of one message.
//! - `chat:files:due`, a sorted set of `ROOM \x1f ID` by the time its bytes
//!   are due to go; a sweep takes an entry with `ZREM`, so exactly one
//!   gateway removes each file.
//!
//! A file's keys share its room's hash tag, so each script runs on one
//! shard of a Redis Cluster; the due set is one key of its own, written
//! beside the scripts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::interfaces::{HashesInterface, KeysInterface, SortedSetsInterface};
use fred::types::scripts::Script;
use fred::types::Value;

use chat_shared::keys::{room_key, PREFIX};
use chat_shared::protocol::{ClientId, RoomName, UserId};

use super::index::{millis, Claim, FileIndex, FileMeta};
use crate::engine::redis::Connection;
use crate::engine::{now_ms, BackendError, BackendResult};

/// Slack on an unreferenced file's metadata beyond its due time, so the
/// sweep (which needs it) finds it first.
const METADATA_SLACK_MS: u64 = 60_000;

/// KEYS: the files' hashes. ARGV: 1 user, 2 claim token.
/// Returns {outcome, index of the file it is about (1-based, 0: none)}.
const CLAIM: &str = r#"
for i, k in ipairs(KEYS) do
  if redis.call('HGET', k, 'uploader') ~= ARGV[1] then return {'not_found', i} end
end
local repeats = 0
for i, k in ipairs(KEYS) do
  local claim = redis.call('HGET', k, 'claim')
  if claim and claim ~= '' then
    if ARGV[2] ~= '-' and claim == ARGV[2] then repeats = repeats + 1 else return {'attached', i} end
  end
end
if repeats == #KEYS then return {'repeat', 0} end
if repeats > 0 then return {'attached', 1} end
for _, k in ipairs(KEYS) do redis.call('HSET', k, 'claim', ARGV[2]) end
return {'claimed', 0}
"#;

/// KEYS: the files' hashes. Gives back the claims of files not bound.
const RELEASE: &str = r#"
for _, k in ipairs(KEYS) do
  if redis.call('HGET', k, 'message') == '' then redis.call('HSET', k, 'claim', '') end
end
return 0
"#;

/// KEYS: the files' hashes, then the message's set. ARGV: 1 seq, 2 lifetime
/// ms, then the ids. Files gone meanwhile (swept) are skipped.
const BIND: &str = r#"
local set = KEYS[#KEYS]
for i = 1, #KEYS - 1 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], 'message', ARGV[1])
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    redis.call('SADD', set, ARGV[i + 2])
  end
end
if redis.call('EXISTS', set) == 1 then redis.call('PEXPIRE', set, ARGV[2]) end
return 0
"#;

/// KEYS: the message's set. ARGV: the prefix of the room's file keys.
/// Forgets the message's files; returns their ids.
const MESSAGE_DELETED: &str = r#"
local ids = redis.call('SMEMBERS', KEYS[1])
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[1])
return ids
"#;

/// See the module documentation.
pub struct RedisFileIndex {
    conn: Arc<Connection>,
    claim: Script,
    release: Script,
    bind: Script,
    message_deleted: Script,
}

fn file_key(room: &RoomName, id: &str) -> String {
    room_key(room, &format!("file:{id}"))
}

fn message_key(room: &RoomName, seq: u64) -> String {
    room_key(room, &format!("msgfiles:{seq}"))
}

fn due_key() -> String {
    format!("{PREFIX}:files:due")
}

fn due_member(room: &RoomName, id: &str) -> String {
    format!("{room}\u{1f}{id}")
}

impl RedisFileIndex {
    pub fn new(conn: Arc<Connection>) -> RedisFileIndex {
        RedisFileIndex {
            conn,
            claim: Script::from_lua(CLAIM),
            release: Script::from_lua(RELEASE),
            bind: Script::from_lua(BIND),
            message_deleted: Script::from_lua(MESSAGE_DELETED),
        }
    }

    async fn eval(&self, script: &Script, keys: Vec<String>, args: Vec<String>) -> BackendResult<Value> {
        self.conn.check()?;
        Ok(script.evalsha_with_reload::<Value, _, _>(self.conn.pool.next(), keys, args).await?)
    }
}

/// A file's hash as metadata; `None` when it is missing or not ours.
fn parse_meta(room: &RoomName, id: &str, fields: &HashMap<String, String>) -> Option<FileMeta> {
    Some(FileMeta {
        id: id.to_owned(),
        room: room.clone(),
        uploader: UserId::parse(fields.get("uploader")?).ok()?,
        name: fields.get("name")?.clone(),
        content_type: fields.get("type")?.clone(),
        size: fields.get("size")?.parse().ok()?,
        created_ms: fields.get("created")?.parse().ok()?,
        message: fields.get("message").and_then(|m| m.parse().ok()),
    })
}

#[async_trait]
impl FileIndex for RedisFileIndex {
    async fn create(&self, meta: &FileMeta, unreferenced: Duration) -> BackendResult<()> {
        self.conn.check()?;
        let key = file_key(&meta.room, &meta.id);
        let fields = vec![
            ("uploader", meta.uploader.to_string()),
            ("name", meta.name.clone()),
            ("type", meta.content_type.clone()),
            ("size", meta.size.to_string()),
            ("created", meta.created_ms.to_string()),
            ("message", String::new()),
            ("claim", String::new()),
        ];
        let due = meta.created_ms.saturating_add(millis(unreferenced));
        let _: () = self.conn.pool.hset(&key, fields).await?;
        let _: () = self.conn.pool.pexpire(&key, (millis(unreferenced) + METADATA_SLACK_MS) as i64, None).await?;
        let _: () = self
            .conn
            .pool
            .zadd(due_key(), None, None, false, false, (due as f64, due_member(&meta.room, &meta.id)))
            .await?;
        Ok(())
    }

    async fn get(&self, room: &RoomName, id: &str) -> BackendResult<Option<FileMeta>> {
        self.conn.check()?;
        let fields: HashMap<String, String> = self.conn.pool.hgetall(file_key(room, id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        parse_meta(room, id, &fields)
            .map(Some)
            .ok_or_else(|| BackendError::BadData(format!("file {room}/{id} has unreadable metadata")))
    }

    async fn claim(
        &self,
        room: &RoomName,
        user: &UserId,
        ids: &[String],
        client_id: Option<&ClientId>,
    ) -> BackendResult<Claim> {
        let keys = ids.iter().map(|id| file_key(room, id)).collect();
        let token = client_id.map_or_else(|| "-".to_owned(), |c| format!("c:{c}"));
        let reply = self.eval(&self.claim, keys, vec![user.to_string(), token]).await?;
        let (outcome, at) = match reply {
            Value::Array(parts) if parts.len() == 2 => {
                let outcome = parts[0].as_string().unwrap_or_default();
                let at = parts[1].as_u64().unwrap_or(0) as usize;
                (outcome, at)
            }
            other => return Err(BackendError::BadData(format!("claim answered {other:?}"))),
        };
        let named = |at: usize| ids.get(at.saturating_sub(1)).cloned().unwrap_or_default();
        match outcome.as_str() {
            "not_found" => Ok(Claim::NotFound(named(at))),
            "attached" => Ok(Claim::Attached(named(at))),
            "repeat" => Ok(Claim::Repeat),
            "claimed" => {
                let mut metas = Vec::with_capacity(ids.len());
                for id in ids {
                    match self.get(room, id).await? {
                        Some(meta) => metas.push(meta),
                        // Swept between the claim and now.
                        None => return Ok(Claim::NotFound(id.clone())),
                    }
                }
                Ok(Claim::Claimed(metas))
            }
            other => Err(BackendError::BadData(format!("claim answered {other}"))),
        }
    }

    async fn release(&self, room: &RoomName, ids: &[String]) -> BackendResult<()> {
        let keys = ids.iter().map(|id| file_key(room, id)).collect();
        self.eval(&self.release, keys, Vec::new()).await.map(|_| ())
    }

    async fn bind(&self, room: &RoomName, ids: &[String], seq: u64, lifetime: Duration) -> BackendResult<()> {
        let mut keys: Vec<String> = ids.iter().map(|id| file_key(room, id)).collect();
        keys.push(message_key(room, seq));
        let mut args = vec![seq.to_string(), millis(lifetime).to_string()];
        args.extend(ids.iter().cloned());
        self.eval(&self.bind, keys, args).await?;
        let due = now_ms().saturating_add(millis(lifetime)) as f64;
        let members: Vec<(f64, String)> = ids.iter().map(|id| (due, due_member(room, id))).collect();
        let _: () = self.conn.pool.zadd(due_key(), None, None, false, false, members).await?;
        Ok(())
    }

    async fn message_deleted(&self, room: &RoomName, seq: u64) -> BackendResult<Vec<String>> {
        let prefix = file_key(room, "");
        let reply = self.eval(&self.message_deleted, vec![message_key(room, seq)], vec![prefix]).await?;
        match reply {
            Value::Array(ids) => Ok(ids.into_iter().filter_map(|id| id.as_string()).collect()),
            Value::Null => Ok(Vec::new()),
            other => Err(BackendError::BadData(format!("message_deleted answered {other:?}"))),
        }
    }

    async fn take_due(&self, now_ms: u64, max: usize) -> BackendResult<Vec<(RoomName, String)>> {
        self.conn.check()?;
        let due: Vec<String> =
            self.conn.pool.zrangebyscore(due_key(), "-inf", now_ms as f64, false, Some((0, max as i64))).await?;
        let mut taken = Vec::new();
        for member in due {
            let removed: i64 = self.conn.pool.zrem(due_key(), &member).await?;
            if removed == 0 {
                continue; // another gateway took it
            }
            let Some((room, id)) = member.split_once('\u{1f}') else { continue };
            let Ok(room) = RoomName::parse(room) else { continue };
            let key = file_key(&room, id);
            let message: Option<String> = self.conn.pool.hget(&key, "message").await?;
            if let Some(seq) = message.filter(|m| !m.is_empty()) {
                // Bound after this entry was written: due again when its key expires.
                let ttl: i64 = self.conn.pool.pttl(&key).await?;
                if ttl > 0 {
                    let at = now_ms.saturating_add(ttl as u64) as f64;
                    let _: () = self.conn.pool.zadd(due_key(), None, None, false, false, (at, member.clone())).await?;
                    tracing::debug!(room = %room, id, seq, "a bound file's due entry moved to its expiry");
                    continue;
                }
            }
            let _: i64 = self.conn.pool.del(&key).await?;
            taken.push((room, id.to_owned()));
        }
        Ok(taken)
    }

    async fn forget_due(&self, room: &RoomName, id: &str) -> BackendResult<()> {
        let _: i64 = self.conn.pool.zrem(due_key(), due_member(room, id)).await?;
        Ok(())
    }
}
