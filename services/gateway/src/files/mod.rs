//! Files: uploads, downloads, and attachments on messages.
//!
//! A file's bytes live in an object store ([`object_store`]: a directory on
//! a single node, an S3-compatible store for a cluster); its metadata
//! (room, uploader, name, type, size, and the message it belongs to) in a
//! [`FileIndex`] every gateway reads (this process's memory on the embedded
//! engine, Redis on the Redis engine).
//!
//! A file's life:
//! 1. `POST /v1/files` ([`routes`]) streams the body into the store, checking
//!    the size and, for types with a signature, the first bytes; then it is
//!    indexed, due for removal after `files.unreferenced_ttl_ms`.
//! 2. A `send` with `attachments` claims the files (each must be the user's
//!    upload to that room, and not on another message), stores the message,
//!    then binds the files to its seq: they live as long as the history's
//!    retention. A send that fails gives its claim back.
//! 3. A `delete` of the message (by its author, or a moderator) removes the
//!    files' metadata before its `ack`, so downloads answer 404 from then
//!    on, and their bytes right after.
//! 4. Every gateway sweeps what is due every `files.sweep_interval_ms`; each
//!    due file is taken by exactly one gateway, which removes its bytes.

pub mod index;
pub mod redis_index;
pub mod routes;
mod sink;
mod sniff;

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use chat_shared::protocol::{Attachment, RoomName};

use crate::engine::now_ms;
use crate::settings::{FileSettings, FileStoreKind};
pub use index::{Claim, FileIndex, FileMeta, MemoryFileIndex};
pub use sniff::matches_signature;

/// Files due for removal taken per sweep round.
const SWEEP_BATCH: usize = 100;

/// Uploads, downloads and the life of files on this node.
pub struct Files {
    pub store: Arc<dyn ObjectStore>,
    pub index: Arc<dyn FileIndex>,
    pub settings: FileSettings,
    /// The bytes of one part of an upload.
    pub part_bytes: usize,
    /// Parts of one upload on their way to the directory store while the
    /// next fills: an upload holds at most `part_bytes × (1 + parts_in_flight)`.
    pub parts_in_flight: usize,
    /// S3 uploads are received into files here before they are sent.
    pub spool_directory: std::path::PathBuf,
    /// One permit per S3 part this node holds in memory while sending it.
    pub part_memory: tokio::sync::Semaphore,
    /// How long a file bound to a message is kept (the history's retention).
    pub retention: Duration,
    /// One permit per upload this node streams at once.
    pub uploads: tokio::sync::Semaphore,
    /// Uploads per user per minute.
    pub rate: routes::UploadRate,
}

impl Files {
    /// The store the settings name.
    ///
    /// # Errors
    /// A directory that cannot be made, S3 settings or credentials that do
    /// not make a client.
    pub fn open(settings: &FileSettings, index: Arc<dyn FileIndex>, retention: Duration) -> anyhow::Result<Files> {
        let (store, part_bytes, parts_in_flight): (Arc<dyn ObjectStore>, usize, usize) = match settings.store {
            FileStoreKind::Directory => {
                std::fs::create_dir_all(&settings.directory)
                    .map_err(|err| anyhow::anyhow!("files.directory {}: {err}", settings.directory))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&settings.directory)?;
                // A local file takes parts of any size: small ones keep an upload's memory small.
                (Arc::new(store), 256 * 1024, 2)
            }
            // S3's parts are 5 MiB or more: spooled first (see `sink`).
            FileStoreKind::S3 => (Arc::new(s3_store(settings)?), settings.s3.part_bytes, 0),
        };
        Ok(Files {
            store,
            index,
            settings: settings.clone(),
            part_bytes,
            parts_in_flight,
            spool_directory: match settings.spool_directory.as_str() {
                "" => std::env::temp_dir().join("chat-uploads"),
                dir => std::path::PathBuf::from(dir),
            },
            part_memory: tokio::sync::Semaphore::new(settings.s3.max_parts_in_memory.max(1)),
            retention,
            uploads: tokio::sync::Semaphore::new(settings.max_concurrent_uploads),
            rate: routes::UploadRate::default(),
        })
    }

    /// Where a file's bytes are kept in the store.
    pub fn object_path(room: &RoomName, id: &str) -> ObjectPath {
        ObjectPath::from(format!("files/{room}/{id}"))
    }

    /// The path a file is downloaded from, on any gateway.
    pub fn url(room: &RoomName, id: &str) -> String {
        format!("/v1/files/{room}/{id}")
    }

    /// Whether uploads of `content_type` (lowercase, no parameters) are allowed.
    pub fn allows(&self, content_type: &str) -> bool {
        self.settings.allowed_types.iter().any(|t| t.eq_ignore_ascii_case(content_type))
    }

    /// A file as a message carries it.
    pub fn attachment(meta: &FileMeta) -> Attachment {
        Attachment {
            id: meta.id.clone(),
            name: meta.name.clone(),
            size: meta.size,
            content_type: meta.content_type.clone(),
            url: Files::url(&meta.room, &meta.id),
        }
    }

    /// A message was deleted: its files answer 404 from now on, and their
    /// bytes go (in the background; what fails stays due for the sweep).
    pub async fn message_deleted(self: &Arc<Self>, room: &RoomName, seq: u64) {
        match self.index.message_deleted(room, seq).await {
            Ok(ids) if ids.is_empty() => {}
            Ok(ids) => {
                let files = self.clone();
                let room = room.clone();
                tokio::spawn(async move {
                    for id in ids {
                        files.remove_bytes(&room, &id).await;
                    }
                });
            }
            Err(err) => {
                tracing::warn!(room = %room, seq, cause = %err, "a deleted message's files were not removed; the sweep will");
            }
        }
    }

    /// Removes a file's bytes and its due entry.
    async fn remove_bytes(&self, room: &RoomName, id: &str) {
        if self.delete_bytes(room, id).await {
            if let Err(err) = self.index.forget_due(room, id).await {
                tracing::debug!(cause = %err, "a removed file's due entry stays; the sweep will drop it");
            }
        }
    }

    /// Deletes a file's bytes from the store; true when they are gone
    /// (already gone counts).
    async fn delete_bytes(&self, room: &RoomName, id: &str) -> bool {
        match self.store.delete(&Files::object_path(room, id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => true,
            Err(err) => {
                tracing::warn!(room = %room, id, cause = %err, "removing a file's bytes failed; the sweep retries");
                false
            }
        }
    }

    /// One sweep: removes the files whose time is up (unreferenced uploads,
    /// and files whose message's retention passed).
    pub async fn sweep(&self) -> usize {
        let due = match self.index.take_due(now_ms(), SWEEP_BATCH).await {
            Ok(due) => due,
            Err(err) => {
                tracing::debug!(cause = %err, "file sweep skipped");
                return 0;
            }
        };
        let mut removed = 0;
        for (room, id) in due {
            if self.delete_bytes(&room, &id).await {
                removed += 1;
            }
        }
        removed
    }

    /// Sweeps every `files.sweep_interval_ms` until the node stops.
    pub fn start_sweeping(self: &Arc<Self>) {
        let files = Arc::downgrade(self);
        let interval = Duration::from_millis(self.settings.sweep_interval_ms);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(files) = files.upgrade() else { return };
                let removed = files.sweep().await;
                if removed > 0 {
                    tracing::debug!(removed, "file sweep");
                }
            }
        });
    }
}

/// A new file id: 128 random bits in hex.
pub fn new_file_id() -> String {
    let n: u128 = rand::random();
    format!("{n:032x}")
}

/// Whether `id` has the shape of a file id (a malformed one is `not_found`).
pub fn is_file_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The S3 client: endpoint, bucket and region from the settings, credentials
/// from the environment or `credentials_file`.
fn s3_store(settings: &FileSettings) -> anyhow::Result<object_store::aws::AmazonS3> {
    let s3 = &settings.s3;
    let mut builder = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_allow_http(s3.allow_http)
        // Path-style URLs: what S3-compatible stores on a private name expect.
        .with_virtual_hosted_style_request(false);
    if !s3.endpoint.is_empty() {
        builder = builder.with_endpoint(&s3.endpoint);
    }
    if let Some(file) = &s3.credentials_file {
        let text =
            std::fs::read_to_string(file).map_err(|err| anyhow::anyhow!("files.s3.credentials_file {file}: {err}"))?;
        for line in text.lines() {
            match line.trim().split_once('=') {
                Some(("AWS_ACCESS_KEY_ID", v)) => builder = builder.with_access_key_id(v.trim()),
                Some(("AWS_SECRET_ACCESS_KEY", v)) => builder = builder.with_secret_access_key(v.trim()),
                Some(("AWS_SESSION_TOKEN", v)) => builder = builder.with_token(v.trim()),
                _ => {}
            }
        }
    }
    Ok(builder.build()?)
}
