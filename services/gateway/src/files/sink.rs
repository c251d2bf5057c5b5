//! Where an upload's body goes while it arrives, so that no upload holds
//! its file in memory:
//!
//! - the directory store takes it straight, in small parts;
//! - for S3 (whose parts are 5 MiB or more) it is spooled to a local file
//!   first, at the client's pace, then sent in parts read back from that
//!   file, each holding one of the node's `files.s3.max_parts_in_memory`
//!   permits only while it is sent. A slow client holds a file handle, not
//!   memory, and the node's part memory stays bounded however many upload.

use std::path::PathBuf;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{FileStoreKind, Files};

/// An upload on its way to the store.
pub enum Sink {
    Direct(WriteMultipart),
    Spool { file: tokio::fs::File, path: PathBuf },
}

impl Sink {
    /// Starts receiving the file `id`, to be stored at `path`.
    pub async fn open(files: &Files, path: &ObjectPath, id: &str) -> Result<Sink, String> {
        if files.settings.store == FileStoreKind::Directory {
            let upload = files.store.put_multipart(path).await.map_err(|e| e.to_string())?;
            return Ok(Sink::Direct(WriteMultipart::new_with_chunk_size(upload, files.part_bytes)));
        }
        tokio::fs::create_dir_all(&files.spool_directory).await.map_err(|e| e.to_string())?;
        let path = files.spool_directory.join(format!("{id}.part"));
        let file = tokio::fs::File::create(&path).await.map_err(|e| e.to_string())?;
        Ok(Sink::Spool { file, path })
    }

    /// Takes the next bytes of the body.
    pub async fn write(&mut self, chunk: &[u8], files: &Files) -> Result<(), String> {
        match self {
            Sink::Direct(writer) => {
                writer.wait_for_capacity(files.parts_in_flight).await.map_err(|e| e.to_string())?;
                writer.write(chunk);
                Ok(())
            }
            Sink::Spool { file, .. } => file.write_all(chunk).await.map_err(|e| e.to_string()),
        }
    }

    /// Drops what was received (a refused upload).
    pub async fn abort(self) {
        match self {
            Sink::Direct(writer) => {
                if let Err(err) = writer.abort().await {
                    tracing::debug!(cause = %err, "aborting a refused upload failed");
                }
            }
            Sink::Spool { file, path } => {
                drop(file);
                let _ = tokio::fs::remove_file(&path).await;
            }
        }
    }

    /// The whole body arrived and passed: stores it at `path`.
    pub async fn finish(self, files: &Files, path: &ObjectPath) -> Result<(), String> {
        match self {
            Sink::Direct(writer) => writer.finish().await.map(|_| ()).map_err(|e| e.to_string()),
            Sink::Spool { mut file, path: spooled } => {
                let sent = async {
                    file.flush().await.map_err(|e| e.to_string())?;
                    drop(file);
                    send_spooled(files, &spooled, path).await
                }
                .await;
                let _ = tokio::fs::remove_file(&spooled).await;
                sent
            }
        }
    }
}

/// Sends a spooled file to the store in parts, one in memory at a time.
async fn send_spooled(files: &Files, spooled: &PathBuf, path: &ObjectPath) -> Result<(), String> {
    let mut reader = tokio::fs::File::open(spooled).await.map_err(|e| e.to_string())?;
    let mut upload = files.store.put_multipart(path).await.map_err(|e| e.to_string())?;
    let sent = async {
        loop {
            let _memory = files.part_memory.acquire().await.map_err(|e| e.to_string())?;
            let mut part = vec![0u8; files.part_bytes];
            let mut filled = 0;
            while filled < part.len() {
                let read = reader.read(&mut part[filled..]).await.map_err(|e| e.to_string())?;
                if read == 0 {
                    break;
                }
                filled += read;
            }
            if filled == 0 {
                return Ok(());
            }
            part.truncate(filled);
            upload.put_part(PutPayload::from(part)).await.map_err(|e| e.to_string())?;
            if filled < files.part_bytes {
                return Ok(());
            }
        }
    }
    .await;
    match sent {
        Ok(()) => upload.complete().await.map(|_| ()).map_err(|e| e.to_string()),
        Err(err) => {
            let _ = upload.abort().await;
            Err(err)
        }
    }
}
