//! [`RedisStore`]: the history keyspace ([`crate::keys`]) on a standalone
//! Redis or a Redis Cluster, through the Lua scripts of [`scripts`]. Each
//! script touches the keys of one room (or conversation, or user) only, so
//! it runs atomically on the shard that owns them; appends publish inside
//! the script (`PUBLISH`, or `SPUBLISH` on a cluster) with the seq in the
//! payload's header.
//!
//! While the pool is not connected every call fails at once with
//! `Unavailable`, rather than waiting out the command timeout.
//!
//! With a [`ReplicaWait`], each append is followed by `WAIT` on the same
//! connection to the same node. An append that fewer replicas acknowledge in
//! time fails with `Unavailable`, although its event is stored and published
//! on the master: it may be lost if that master dies before its replicas
//! catch up. A retry with the same client id is answered from the stored
//! result and waits again. That wait covers the original write even on
//! another connection: Redis gives `WAIT` the replication offset as of the
//! connection's last command, reads included, and the retry's script reads
//! the stored result after the original wrote it.

mod read_state;
pub mod replies;
pub mod scripts;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytestring::ByteString;
use fred::clients::Pool;
use fred::interfaces::{ClientLike, KeysInterface, ListInterface, PubsubInterface, ServerInterface};
use fred::types::{Expiration, SetOptions, Value};

use chat_shared::keys::{room_channel, user_channel};
use chat_shared::protocol::{dm_prefix, event_prefix, ClientId, RoomEventKind, RoomName, Thread, UserId};
use chat_shared::settings::{DmSettings, HistorySettings};
use chat_shared::wire::Envelope;
use chat_shared::{BackendError, BackendResult};

use crate::{
    keys, new_epoch, Appended, Cursor, CursorMove, DmDraft, HistoryStore, Outcome, Page, RoomDraft, Summary, Window,
    MAX_EMOJI_PER_MESSAGE,
};
use replies::{as_u64, DmAppend};
use scripts::Scripts;

/// How long the epoch given to a room read before its first message lives
/// without one (a message renews it to the retention).
pub const EMPTY_ROOM_EPOCH_TTL: Duration = Duration::from_secs(3_600);

/// How many replicas must hold an appended event before the append returns
/// (`redis.wait_replicas`, `redis.wait_timeout_ms`): Redis replicates
/// asynchronously, so without it an acknowledged event can be lost with its
/// master. See the module documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaWait {
    /// 0: do not wait.
    pub replicas: u32,
    pub timeout: Duration,
}

/// Called each time an append reached fewer replicas than [`ReplicaWait`]
/// asks for (the gateway counts them in a metric).
pub type ShortfallHook = Arc<dyn Fn() + Send + Sync>;

/// See the module documentation.
pub struct RedisStore {
    pool: Pool,
    /// A Redis Cluster: sharded pub/sub.
    sharded: bool,
    scripts: Scripts,
    history: HistorySettings,
    dm: DmSettings,
    wait: ReplicaWait,
    on_shortfall: Option<ShortfallHook>,
}

fn millis(duration: Duration) -> String {
    duration.as_millis().max(1).to_string()
}

impl RedisStore {
    /// A store on `pool` (`sharded`: the pool is a Redis Cluster's) keeping
    /// what `history` and `dm` say.
    pub fn new(pool: Pool, sharded: bool, history: HistorySettings, dm: DmSettings) -> RedisStore {
        RedisStore {
            pool,
            sharded,
            scripts: Scripts::default(),
            history,
            dm,
            wait: ReplicaWait::default(),
            on_shortfall: None,
        }
    }

    /// Appends return only once `wait.replicas` replicas hold the event;
    /// `on_shortfall` is called for each that did not in time.
    #[must_use]
    pub fn with_replica_wait(mut self, wait: ReplicaWait, on_shortfall: Option<ShortfallHook>) -> RedisStore {
        self.wait = wait;
        self.on_shortfall = on_shortfall;
        self
    }

    fn publish_command(&self) -> &'static str {
        if self.sharded {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }

    /// Fails fast while Redis is unreachable.
    fn check(&self) -> BackendResult<()> {
        if self.pool.is_connected() {
            Ok(())
        } else {
            Err(BackendError::Unavailable("redis is unreachable".into()))
        }
    }

    async fn eval(
        &self,
        script: &fred::types::scripts::Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> BackendResult<Value> {
        self.check()?;
        Ok(script.evalsha_with_reload::<Value, _, _>(self.pool.next(), keys, args).await?)
    }

    /// An append script (`keys[0]` names its slot), then, with
    /// [`ReplicaWait`] on, `WAIT` on the same connection to the same node:
    /// `WAIT` counts the replicas that acknowledged that connection's
    /// writes. `stored` tells from the reply whether the script wrote.
    async fn eval_append(
        &self,
        script: &fred::types::scripts::Script,
        keys: Vec<String>,
        args: Vec<String>,
        stored: impl FnOnce(&Value) -> bool,
    ) -> BackendResult<Value> {
        self.check()?;
        let client = self.pool.next();
        let slot = (self.wait.replicas > 0)
            .then(|| fred::util::redis_keyslot(keys.first().map(String::as_bytes).unwrap_or_default()));
        let reply = script.evalsha_with_reload::<Value, _, _>(client, keys, args).await?;
        let Some(slot) = slot.filter(|_| stored(&reply)) else { return Ok(reply) };
        let options = fred::types::config::Options {
            cluster_hash: Some(fred::types::ClusterHash::Custom(slot)),
            // WAIT returns by its own timeout; the command's must not cut it short.
            timeout: Some(self.wait.timeout + Duration::from_secs(1)),
            ..Default::default()
        };
        let timeout = i64::try_from(self.wait.timeout.as_millis()).unwrap_or(i64::MAX).max(1);
        let acked: i64 = client.with_options(&options).wait(i64::from(self.wait.replicas), timeout).await?;
        if acked < i64::from(self.wait.replicas) {
            if let Some(hook) = &self.on_shortfall {
                hook();
            }
            return Err(BackendError::Unavailable(format!(
                "the event reached {acked} of {} replicas within {} ms; it may be lost if its master fails",
                self.wait.replicas,
                self.wait.timeout.as_millis()
            )));
        }
        Ok(reply)
    }

    fn client_id_ttl(&self, client_id: Option<&ClientId>) -> String {
        client_id.map_or_else(|| "0".to_owned(), |_| millis(self.history.idempotency_window()))
    }

    async fn read(&self, keys: Vec<String>, window: Window, epoch: String) -> BackendResult<Page> {
        let epoch_ttl = EMPTY_ROOM_EPOCH_TTL.min(self.history.retention());
        let bound = |v: Option<u64>| v.map_or_else(|| "-1".to_owned(), |v| v.to_string());
        let limit = window.limit.min(self.history.size);
        let reply = self
            .eval(
                &self.scripts.read,
                keys,
                vec![bound(window.after), bound(window.before), limit.to_string(), epoch, millis(epoch_ttl)],
            )
            .await?;
        replies::page(reply)
    }
}

#[async_trait]
impl HistoryStore for RedisStore {
    async fn append_room(&self, draft: RoomDraft) -> BackendResult<Outcome> {
        let RoomDraft { room, from, event, client_id, moderator } = draft;
        let client_id_key = match &client_id {
            Some(cid) => keys::room_client_id(&room, &from.id, cid.as_str()),
            None => keys::room_seq(&room),
        };
        let (emoji, op) = match &event {
            RoomEventKind::Reaction { emoji, op, .. } => (emoji.as_str().to_owned(), op.as_str()),
            _ => (String::new(), ""),
        };
        let reply = self
            .eval_append(
                &self.scripts.append_room,
                vec![
                    keys::room_seq(&room),
                    keys::room_history(&room),
                    keys::room_epoch(&room),
                    client_id_key,
                    keys::room_messages(&room),
                    keys::room_authored(&room, &from.id),
                    keys::room_reactions(&room),
                    keys::room_last_message(&room),
                    keys::room_reaction_index(&room),
                ],
                vec![
                    event.name().to_owned(),
                    event_prefix(&room, &from, &event, client_id.as_ref()),
                    self.history.size.to_string(),
                    self.client_id_ttl(client_id.as_ref()),
                    self.publish_command().to_owned(),
                    room_channel(&room),
                    new_epoch(),
                    millis(self.history.retention()),
                    from.id.to_string(),
                    event.target().map(|seq| seq.to_string()).unwrap_or_default(),
                    emoji,
                    op.to_owned(),
                    MAX_EMOJI_PER_MESSAGE.to_string(),
                    if moderator { "1" } else { "0" }.to_owned(),
                ],
                // "SEQ:TS" (stored, or a repeated client id's first result) wrote or had written.
                |reply| reply.as_str().is_some_and(|r| r.as_bytes().first().is_some_and(u8::is_ascii_digit)),
            )
            .await?;
        replies::append(reply)
    }

    async fn read_room(&self, room: &RoomName, window: Window) -> BackendResult<Page> {
        let keys = vec![keys::room_seq(room), keys::room_history(room), keys::room_epoch(room)];
        self.read(keys, window, new_epoch()).await
    }

    async fn append_dm(&self, draft: DmDraft) -> BackendResult<Appended> {
        let DmDraft { from, to, text, client_id, origin } = draft;
        let sender = &from.id;
        let client_id_key = match &client_id {
            Some(cid) => keys::conversation_client_id(sender, &to, sender, cid.as_str()),
            None => keys::conversation_seq(sender, &to),
        };
        let reply = self
            .eval_append(
                &self.scripts.append_dm,
                vec![
                    keys::conversation_seq(sender, &to),
                    keys::conversation_history(sender, &to),
                    client_id_key.clone(),
                    keys::conversation_authored(sender, &to, sender),
                ],
                vec![
                    dm_prefix(&from, &to, &text, client_id.as_ref()),
                    self.history.size.to_string(),
                    self.client_id_ttl(client_id.as_ref()),
                    millis(self.history.retention()),
                ],
                |_| true,
            )
            .await?;
        let (seq, ts, json) = match replies::dm_append(reply)? {
            DmAppend::Repeated(appended) => return Ok(appended),
            DmAppend::New { seq, ts, json } => (seq, ts, json),
        };
        self.create_dm_cursors(sender, &to).await?;
        let payload = Envelope {
            kind: "dm",
            seq: Some(seq),
            skip_user: None,
            skip_session: Some(&origin),
            only_session: None,
            body: &json,
        }
        .encode();
        let reached = self
            .eval(
                &self.scripts.deliver_dm,
                vec![keys::user_offline(&to)],
                vec![
                    self.publish_command().to_owned(),
                    user_channel(&to),
                    payload.clone(),
                    json,
                    self.dm.offline_queue_max_messages.to_string(),
                    millis(self.dm.offline_ttl()),
                ],
            )
            .await?;
        let delivered = as_u64(&reached)? > 0;
        if *sender != to {
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

    async fn read_conversation(&self, a: &UserId, b: &UserId, window: Window) -> BackendResult<Page> {
        let seq = keys::conversation_seq(a, b);
        let keys = vec![seq.clone(), keys::conversation_history(a, b), seq];
        self.read(keys, window, String::new()).await
    }

    async fn offline(&self, user: &UserId) -> BackendResult<Vec<ByteString>> {
        self.check()?;
        let cap = self.dm.offline_queue_max_messages.max(1) as i64;
        let queued: Vec<String> = self.pool.lrange(keys::user_offline(user), 0, cap - 1).await?;
        Ok(queued.into_iter().map(ByteString::from).collect())
    }

    async fn ack_offline(&self, user: &UserId, delivered: &[ByteString]) -> BackendResult<u64> {
        if delivered.is_empty() {
            return Ok(0);
        }
        let args = delivered.iter().map(ToString::to_string).collect();
        let reply = self.eval(&self.scripts.ack_offline, vec![keys::user_offline(user)], args).await?;
        as_u64(&reply)
    }

    async fn summaries(&self, reader: &UserId, threads: &[(Thread, Cursor)]) -> BackendResult<Vec<Summary>> {
        self.summaries_pipelined(reader, threads).await
    }

    async fn set_cursor(
        &self,
        user: &UserId,
        thread: &Thread,
        to: Cursor,
        how: CursorMove,
    ) -> BackendResult<(Cursor, bool)> {
        self.set_cursor_script(user, thread, to, how).await
    }

    async fn cursors(&self, user: &UserId) -> BackendResult<Vec<(Thread, Cursor)>> {
        self.cursors_script(user).await
    }
}
