//! The history store: every read and write of the history keyspace, on a
//! fred pool. Gateways use it in their publish path (append, DM delivery,
//! offline queues); the history service uses it to serve reads.

use std::sync::Arc;
use std::time::Duration;

use fred::clients::Pool;
use fred::interfaces::{KeysInterface, ListInterface, PubsubInterface};
use fred::types::{Expiration, SetOptions, Value};
use rand::Rng;
use serde_json::value::RawValue;

use chat_shared::keys::{room_channel, user_channel};
use chat_shared::protocol::{dm_prefix, message_prefix, ClientId, RoomName, StoredMessage, UserId, UserRef};
use chat_shared::wire::Envelope;

use crate::keys;
use crate::scripts::Scripts;

/// How long the epoch given to a room read before its first message lives
/// without one (a message renews it to the retention).
pub const EMPTY_ROOM_EPOCH_TTL: Duration = Duration::from_secs(3_600);

/// What the store keeps, and for how long.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Messages kept per room and per DM conversation (`history.size`).
    pub size: usize,
    /// A room or conversation with no new message for this long is dropped
    /// (`history.retention_days`).
    pub retention: Duration,
    /// How long a `client_id` is remembered.
    pub idempotency_window: Duration,
    /// DMs kept per offline recipient; the oldest go first.
    pub offline_queue_max_messages: usize,
    /// How long a queued DM waits for its recipient.
    pub offline_ttl: Duration,
}

/// A Redis call failed or answered something unexpected.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] fred::error::Error),
    #[error("unexpected reply from redis: {0}")]
    Reply(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A stored message's seq and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub ts: u64,
    /// For DMs: whether a node of the recipient got it (else it was queued).
    pub delivered: bool,
}

/// Which messages to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Only messages with a seq above this; then the oldest `limit` of them.
    pub after: Option<u64>,
    /// Only messages with a seq below this; without `after`, the newest `limit`.
    pub before: Option<u64>,
    pub limit: usize,
}

impl Window {
    /// The newest `limit` messages.
    pub fn latest(limit: usize) -> Window {
        Window { after: None, before: None, limit }
    }
}

/// Messages of one room or conversation as of one moment.
#[derive(Debug, Clone)]
pub struct Page {
    /// The latest seq (0: no message yet, or expired).
    pub seq: u64,
    /// The history's epoch (rooms only; empty for conversations).
    pub epoch: String,
    /// Oldest first, consecutive seqs.
    pub messages: Vec<StoredMessage>,
}

/// See the module documentation.
pub struct Store {
    pool: Pool,
    /// A Redis Cluster: sharded pub/sub.
    sharded: bool,
    scripts: Scripts,
    settings: StoreSettings,
}

fn reply_error(what: &str, value: &Value) -> StoreError {
    StoreError::Reply(format!("{what}: {value:?}"))
}

fn as_u64(value: &Value) -> StoreResult<u64> {
    match value {
        Value::Integer(n) => Ok((*n).max(0) as u64),
        Value::String(s) => s.parse().map_err(|_| reply_error("number", value)),
        Value::Bytes(b) => {
            std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(|| reply_error("number", value))
        }
        other => Err(reply_error("number", other)),
    }
}

fn as_string(value: Value) -> StoreResult<String> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| StoreError::Reply("string: not UTF-8".into())),
        Value::Integer(n) => Ok(n.to_string()),
        other => Err(reply_error("string", &other)),
    }
}

fn as_array(value: Value) -> StoreResult<Vec<Value>> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Err(reply_error("array", &other)),
    }
}

fn millis(duration: Duration) -> String {
    duration.as_millis().max(1).to_string()
}

fn new_epoch() -> String {
    format!("{:016x}", rand::rng().random::<u64>())
}

/// "seq:ts" from the append script.
fn parse_appended(reply: &str) -> StoreResult<Appended> {
    let mut parts = reply.split(':');
    match (parts.next().and_then(|s| s.parse().ok()), parts.next().and_then(|s| s.parse().ok())) {
        (Some(seq), Some(ts)) => Ok(Appended { seq, ts, delivered: true }),
        _ => Err(StoreError::Reply(format!("append: {reply}"))),
    }
}

impl Store {
    pub fn new(pool: Pool, sharded: bool, settings: StoreSettings) -> Store {
        Store { pool, sharded, scripts: Scripts::default(), settings }
    }

    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    fn publish_command(&self) -> &'static str {
        if self.sharded {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    async fn eval(
        &self,
        script: &fred::types::scripts::Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> StoreResult<Value> {
        Ok(script.evalsha_with_reload::<Value, _, _>(self.pool.next(), keys, args).await?)
    }

    fn client_id_ttl(&self, client_id: Option<&ClientId>) -> String {
        client_id.map_or_else(|| "0".to_owned(), |_| millis(self.settings.idempotency_window))
    }

    /// Takes the room's next seq, appends the message to the capped history
    /// and publishes it on the room's channel, as one step. A `client_id` seen
    /// from the same user in the same room within the idempotency window
    /// returns the first result and stores nothing.
    pub async fn append_room(
        &self,
        room: &RoomName,
        from: &UserRef,
        text: &str,
        client_id: Option<&ClientId>,
    ) -> StoreResult<Appended> {
        let client_id_key = match client_id {
            Some(cid) => keys::room_client_id(room, &from.id, cid.as_str()),
            None => keys::room_seq(room),
        };
        let reply = self
            .eval(
                &self.scripts.append_room,
                vec![keys::room_seq(room), keys::room_history(room), keys::room_epoch(room), client_id_key],
                vec![
                    message_prefix(room, from, text, client_id),
                    self.settings.size.to_string(),
                    self.client_id_ttl(client_id),
                    self.publish_command().to_owned(),
                    room_channel(room),
                    new_epoch(),
                    millis(self.settings.retention),
                ],
            )
            .await?;
        parse_appended(&as_string(reply)?)
    }

    /// Reads a window of a room's history (giving it an epoch if it has
    /// none: for [`EMPTY_ROOM_EPOCH_TTL`] until its first message).
    pub async fn read_room(&self, room: &RoomName, window: Window) -> StoreResult<Page> {
        let keys = vec![keys::room_seq(room), keys::room_history(room), keys::room_epoch(room)];
        self.read(keys, window, new_epoch()).await
    }

    /// Reads a window of the conversation between two users.
    pub async fn read_conversation(&self, a: &UserId, b: &UserId, window: Window) -> StoreResult<Page> {
        let seq = keys::conversation_seq(a, b);
        let keys = vec![seq.clone(), keys::conversation_history(a, b), seq];
        self.read(keys, window, String::new()).await
    }

    async fn read(&self, keys: Vec<String>, window: Window, epoch: String) -> StoreResult<Page> {
        let epoch_ttl = EMPTY_ROOM_EPOCH_TTL.min(self.settings.retention);
        let bound = |v: Option<u64>| v.map_or_else(|| "-1".to_owned(), |v| v.to_string());
        let limit = window.limit.min(self.settings.size);
        let reply = self
            .eval(
                &self.scripts.read,
                keys,
                vec![bound(window.after), bound(window.before), limit.to_string(), epoch, millis(epoch_ttl)],
            )
            .await?;
        let mut fields = as_array(reply)?.into_iter();
        let (Some(seq), Some(epoch), Some(first), Some(messages)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(StoreError::Reply("read: too few fields".into()));
        };
        let first = as_u64(&first)?;
        let messages = as_array(messages)?
            .into_iter()
            .enumerate()
            .map(|(i, json)| {
                let json = RawValue::from_string(as_string(json)?)
                    .map_err(|err| StoreError::Reply(format!("stored message: {err}")))?;
                Ok(StoredMessage { seq: first + i as u64, json: Arc::from(json) })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Page { seq: as_u64(&seq)?, epoch: as_string(epoch)?, messages })
    }

    /// Appends a DM to the pair's conversation, publishes it to the
    /// recipient's channel (queueing it when no node listens there) and to the
    /// sender's channel for the sender's other sessions (`origin`, the sending
    /// session, is skipped).
    pub async fn append_dm(
        &self,
        from: &UserRef,
        to: &UserId,
        text: &str,
        client_id: Option<&ClientId>,
        origin: &str,
    ) -> StoreResult<Appended> {
        let sender = &from.id;
        let client_id_key = match client_id {
            Some(cid) => keys::conversation_client_id(sender, to, sender, cid.as_str()),
            None => keys::conversation_seq(sender, to),
        };
        let reply = self
            .eval(
                &self.scripts.append_dm,
                vec![keys::conversation_seq(sender, to), keys::conversation_history(sender, to), client_id_key.clone()],
                vec![
                    dm_prefix(from, to, text, client_id),
                    self.settings.size.to_string(),
                    self.client_id_ttl(client_id),
                    millis(self.settings.retention),
                ],
            )
            .await?;
        let mut fields = as_array(reply)?.into_iter();
        let (Some(seq), Some(ts), Some(json), Some(repeated), Some(delivered)) =
            (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(StoreError::Reply("append_dm: too few fields".into()));
        };
        let (seq, ts) = (as_u64(&seq)?, as_u64(&ts)?);
        if as_u64(&repeated)? == 1 {
            return Ok(Appended { seq, ts, delivered: as_u64(&delivered)? == 1 });
        }
        let json = as_string(json)?;
        let payload =
            Envelope { kind: "dm", seq: Some(seq), skip_user: None, skip_session: Some(origin), body: &json }.encode();
        let reached = self
            .eval(
                &self.scripts.deliver_dm,
                vec![keys::user_offline(to)],
                vec![
                    self.publish_command().to_owned(),
                    user_channel(to),
                    payload.clone(),
                    json,
                    self.settings.offline_queue_max_messages.to_string(),
                    millis(self.settings.offline_ttl),
                ],
            )
            .await?;
        let delivered = as_u64(&reached)? > 0;
        if sender != to {
            let client = self.pool.next();
            let channel = user_channel(sender);
            let _: i64 = if self.sharded {
                client.spublish(channel, payload).await?
            } else {
                client.publish(channel, payload).await?
            };
        }
        if client_id.is_some() && !delivered {
            // A retry with the same client id must report it queued, too.
            let _: Option<String> = self
                .pool
                .set(client_id_key, format!("{seq}:{ts}:0"), Some(Expiration::KEEPTTL), Some(SetOptions::XX), false)
                .await?;
        }
        Ok(Appended { seq, ts, delivered })
    }

    /// The DMs queued for `user`, oldest first (at most the queue's cap).
    /// They stay queued until [`Store::ack_offline`].
    pub async fn offline(&self, user: &UserId) -> StoreResult<Vec<String>> {
        let cap = self.settings.offline_queue_max_messages.max(1) as i64;
        Ok(self.pool.lrange(keys::user_offline(user), 0, cap - 1).await?)
    }

    /// Removes DMs that reached the user from the queue; returns how many.
    pub async fn ack_offline(&self, user: &UserId, delivered: &[String]) -> StoreResult<u64> {
        if delivered.is_empty() {
            return Ok(0);
        }
        let reply = self.eval(&self.scripts.ack_offline, vec![keys::user_offline(user)], delivered.to_vec()).await?;
        as_u64(&reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_replies_parse() {
        assert_eq!(
            parse_appended("12:1700000000000").unwrap(),
            Appended { seq: 12, ts: 1_700_000_000_000, delivered: true }
        );
        assert!(parse_appended("12").is_err());
        assert!(parse_appended("x:1").is_err());
    }
}
