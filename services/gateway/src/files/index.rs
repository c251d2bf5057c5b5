//! The index of files: what every gateway knows of a file besides its
//! bytes, and the claims that attach files to exactly one message.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use chat_shared::protocol::{ClientId, RoomName, UserId};

use crate::engine::{now_ms, BackendError, BackendResult};

/// One uploaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub id: String,
    pub room: RoomName,
    pub uploader: UserId,
    pub name: String,
    /// Lowercase, without parameters.
    pub content_type: String,
    pub size: u64,
    pub created_ms: u64,
    /// The seq of the message it is attached to, once bound.
    pub message: Option<u64>,
}

/// What became of a claim of files for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Every file is the user's upload to the room and free: now held for
    /// this message until bound or given back.
    Claimed(Vec<FileMeta>),
    /// The same files were claimed before under the same `client_id` (a
    /// repeated `send`): the store answers with the first one's `ack`.
    Repeat,
    /// A file is unknown, expired, malformed, or another user's or room's.
    NotFound(String),
    /// A file is attached to another message already.
    Attached(String),
}

/// Where file metadata lives: this process (embedded engine) or Redis.
#[async_trait]
pub trait FileIndex: Send + Sync {
    /// Records a new upload, due for removal after `unreferenced` unless bound.
    async fn create(&self, meta: &FileMeta, unreferenced: Duration) -> BackendResult<()>;
    /// A file of `room`, if it is known (not expired, not deleted).
    async fn get(&self, room: &RoomName, id: &str) -> BackendResult<Option<FileMeta>>;
    /// Claims `ids` (distinct) for a message by `user` in `room`.
    async fn claim(
        &self,
        room: &RoomName,
        user: &UserId,
        ids: &[String],
        client_id: Option<&ClientId>,
    ) -> BackendResult<Claim>;
    /// Gives back a claim whose message was not stored.
    async fn release(&self, room: &RoomName, ids: &[String]) -> BackendResult<()>;
    /// Binds claimed files to the message `seq`: they live `lifetime` more.
    async fn bind(&self, room: &RoomName, ids: &[String], seq: u64, lifetime: Duration) -> BackendResult<()>;
    /// The message `seq` was deleted: forgets its files (they answer 404
    /// from now on); returns their ids, whose bytes are to go.
    async fn message_deleted(&self, room: &RoomName, seq: u64) -> BackendResult<Vec<String>>;
    /// Takes up to `max` files due for removal at `now_ms` (each is taken
    /// once, cluster-wide) and forgets their metadata.
    async fn take_due(&self, now_ms: u64, max: usize) -> BackendResult<Vec<(RoomName, String)>>;
    /// Drops a file's due entry (its bytes are gone already).
    async fn forget_due(&self, room: &RoomName, id: &str) -> BackendResult<()>;
}

/// A file in the memory index: its metadata, claim and due time.
struct Entry {
    meta: FileMeta,
    claimed_by: Option<Option<ClientId>>,
    due_ms: u64,
}

#[derive(Default)]
struct Inner {
    files: HashMap<(RoomName, String), Entry>,
    /// (room, message seq) → its files.
    messages: HashMap<(RoomName, u64), Vec<String>>,
    /// (due time, room, id), for the sweep.
    due: BTreeSet<(u64, RoomName, String)>,
}

/// The embedded engine's index: this process's memory, at most
/// `max_files` files (uploads beyond are refused as `unavailable`).
pub struct MemoryFileIndex {
    max_files: usize,
    inner: Mutex<Inner>,
}

impl MemoryFileIndex {
    pub fn new(max_files: usize) -> MemoryFileIndex {
        MemoryFileIndex { max_files, inner: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn key(room: &RoomName, id: &str) -> (RoomName, String) {
    (room.clone(), id.to_owned())
}

/// A duration in whole milliseconds (saturating).
pub(super) fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

#[async_trait]
impl FileIndex for MemoryFileIndex {
    async fn create(&self, meta: &FileMeta, unreferenced: Duration) -> BackendResult<()> {
        let mut inner = self.lock();
        if inner.files.len() >= self.max_files {
            return Err(BackendError::Unavailable(format!("the file index is full ({} files)", self.max_files)));
        }
        let due_ms = meta.created_ms.saturating_add(millis(unreferenced));
        inner.due.insert((due_ms, meta.room.clone(), meta.id.clone()));
        inner.files.insert(key(&meta.room, &meta.id), Entry { meta: meta.clone(), claimed_by: None, due_ms });
        Ok(())
    }

    async fn get(&self, room: &RoomName, id: &str) -> BackendResult<Option<FileMeta>> {
        Ok(self.lock().files.get(&key(room, id)).map(|e| e.meta.clone()))
    }

    async fn claim(
        &self,
        room: &RoomName,
        user: &UserId,
        ids: &[String],
        client_id: Option<&ClientId>,
    ) -> BackendResult<Claim> {
        let mut inner = self.lock();
        for id in ids {
            match inner.files.get(&key(room, id)) {
                Some(entry) if entry.meta.uploader == *user => {}
                _ => return Ok(Claim::NotFound(id.clone())),
            }
        }
        let mut repeats = 0;
        for id in ids {
            let entry = &inner.files[&key(room, id)];
            match &entry.claimed_by {
                None => {}
                Some(Some(previous)) if client_id == Some(previous) => repeats += 1,
                Some(_) => return Ok(Claim::Attached(id.clone())),
            }
        }
        if repeats == ids.len() {
            return Ok(Claim::Repeat);
        }
        if repeats > 0 {
            return Ok(Claim::Attached(ids[0].clone()));
        }
        let mut metas = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(entry) = inner.files.get_mut(&key(room, id)) {
                entry.claimed_by = Some(client_id.cloned());
                metas.push(entry.meta.clone());
            }
        }
        Ok(Claim::Claimed(metas))
    }

    async fn release(&self, room: &RoomName, ids: &[String]) -> BackendResult<()> {
        let mut inner = self.lock();
        for id in ids {
            if let Some(entry) = inner.files.get_mut(&key(room, id)) {
                if entry.meta.message.is_none() {
                    entry.claimed_by = None;
                }
            }
        }
        Ok(())
    }

    async fn bind(&self, room: &RoomName, ids: &[String], seq: u64, lifetime: Duration) -> BackendResult<()> {
        let mut inner = self.lock();
        let due_ms = now_ms().saturating_add(millis(lifetime));
        for id in ids {
            let Some(entry) = inner.files.get_mut(&key(room, id)) else { continue };
            entry.meta.message = Some(seq);
            let old = (entry.due_ms, room.clone(), id.clone());
            entry.due_ms = due_ms;
            inner.due.remove(&old);
            inner.due.insert((due_ms, room.clone(), id.clone()));
        }
        inner.messages.insert((room.clone(), seq), ids.to_vec());
        Ok(())
    }

    async fn message_deleted(&self, room: &RoomName, seq: u64) -> BackendResult<Vec<String>> {
        let mut inner = self.lock();
        let ids = inner.messages.remove(&(room.clone(), seq)).unwrap_or_default();
        for id in &ids {
            if let Some(entry) = inner.files.remove(&key(room, id)) {
                inner.due.remove(&(entry.due_ms, room.clone(), id.clone()));
            }
        }
        Ok(ids)
    }

    async fn take_due(&self, now_ms: u64, max: usize) -> BackendResult<Vec<(RoomName, String)>> {
        let mut inner = self.lock();
        let due: Vec<_> = inner.due.iter().take_while(|(at, _, _)| *at <= now_ms).take(max).cloned().collect();
        for entry in &due {
            inner.due.remove(entry);
            if let Some(file) = inner.files.remove(&key(&entry.1, &entry.2)) {
                if let Some(seq) = file.meta.message {
                    inner.messages.remove(&(entry.1.clone(), seq));
                }
            }
        }
        Ok(due.into_iter().map(|(_, room, id)| (room, id)).collect())
    }

    async fn forget_due(&self, _room: &RoomName, _id: &str) -> BackendResult<()> {
        // `message_deleted` dropped it with the file.
        Ok(())
    }
}
