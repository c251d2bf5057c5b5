//! `POST /v1/files?room=&filename=` (an upload, streamed into the store) and
//! `GET /v1/files/{room}/{id}` (a download, with `Range`), on every gateway,
//! with the authentication of `/ws`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use chat_shared::http::ApiError;
use chat_shared::protocol::{RoomName, UserId};
use chat_shared::ErrorCode;

use super::sink::Sink;
use super::sniff::SIGNATURE_BYTES;
use super::{is_file_id, matches_signature, new_file_id, FileMeta, Files};
use crate::engine::now_ms;
use crate::http::{identify, resource};
use crate::node::Node;
use crate::settings::AuthMode;

/// The longest file name, in bytes.
const MAX_FILE_NAME_BYTES: usize = 255;
/// Types a browser shows in the page (everything else is a download).
const INLINE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/files").post(upload)).service(resource("/v1/files/{room}/{id}").get(download));
}

/// The per-user upload rate on this node: starts in the current minute.
#[derive(Default)]
pub struct UploadRate {
    started: Mutex<HashMap<UserId, (Instant, u32)>>,
}

/// Users whose upload minute this node remembers at most; beyond, the
/// oldest minutes are forgotten first (and when none is over, uploads wait).
const MAX_RATED_UPLOADERS: usize = 10_000;

impl UploadRate {
    /// Takes one upload of `user`; `Err(ms)` to wait when over `per_minute`.
    fn take(&self, user: &UserId, per_minute: u32) -> Result<(), u64> {
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let mut started = self.started.lock().unwrap_or_else(|p| p.into_inner());
        if started.len() >= MAX_RATED_UPLOADERS && !started.contains_key(user) {
            started.retain(|_, (at, _)| now.duration_since(*at) < minute);
            if started.len() >= MAX_RATED_UPLOADERS {
                return Err(1_000);
            }
        }
        let (at, count) = started.entry(user.clone()).or_insert((now, 0));
        if now.duration_since(*at) >= minute {
            (*at, *count) = (now, 0);
        }
        if *count >= per_minute {
            return Err((minute - now.duration_since(*at)).as_millis() as u64 + 1);
        }
        *count += 1;
        Ok(())
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

fn unavailable(what: &str, err: impl std::fmt::Display) -> ApiError {
    tracing::warn!(cause = %err, "{what} failed");
    ApiError::new(ErrorCode::Unavailable, format!("{what} failed: the file store is unavailable"))
}

/// A file name as given: 1 to 255 bytes, no control characters, no path.
fn file_name(name: Option<&String>) -> Result<String, ApiError> {
    let name = name.map(|n| n.trim()).filter(|n| !n.is_empty()).ok_or_else(|| bad("`filename` is required"))?;
    if name.len() > MAX_FILE_NAME_BYTES
        || name.chars().any(|c| c.is_control() || c == '/' || c == '\\')
        || name == "."
        || name == ".."
    {
        return Err(bad(format!(
            "`filename` must be 1 to {MAX_FILE_NAME_BYTES} bytes without control characters or slashes"
        )));
    }
    Ok(name.to_owned())
}

/// The request's content type without parameters, lowercase
/// (`application/octet-stream` when none is given).
fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

async fn upload(req: HttpRequest, node: web::Data<Node>, mut body: web::Payload) -> Result<HttpResponse, ApiError> {
    let files = &node.files;
    if node.is_draining() {
        return Err(ApiError::new(ErrorCode::Unavailable, "the node is draining; upload to another"));
    }
    let (identity, query) = identify(&node, req.head())?;
    if node.settings.cluster.auth.mode == AuthMode::Anonymous && !query.contains_key("user") {
        return Err(bad("an upload needs `user` in anonymous mode"));
    }
    let room = query.get("room").ok_or_else(|| bad("`room` is required"))?;
    let room = RoomName::parse(room).map_err(|err| bad(err.0))?;
    let name = file_name(query.get("filename"))?;
    if !identity.rooms.allows(&room) {
        return Err(ApiError::new(ErrorCode::Forbidden, format!("room {room} is not allowed")));
    }
    let max = files.settings.max_bytes;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let content_type = content_type(&req);
    if !files.allows(&content_type) {
        return Err(ApiError::new(ErrorCode::UnsupportedType, format!("{content_type} is not an allowed type")));
    }
    if let Err(wait_ms) = files.rate.take(&identity.user.id, files.settings.max_uploads_per_minute) {
        let per_minute = files.settings.max_uploads_per_minute;
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            format!("over {per_minute} uploads per minute; try again in {} s", wait_ms.div_ceil(1000)),
        ));
    }
    let Ok(_permit) = files.uploads.try_acquire() else {
        return Err(ApiError::new(ErrorCode::Unavailable, "this node is busy with uploads; try again"));
    };

    let id = new_file_id();
    let path = Files::object_path(&room, &id);
    let mut sink = Sink::open(files, &path, &id).await.map_err(|err| unavailable("upload", err))?;
    let mut head = Vec::with_capacity(SIGNATURE_BYTES);
    let mut size = 0u64;
    let refused = loop {
        let Some(chunk) = body.next().await else { break None };
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(err) => break Some(bad(format!("the upload broke off: {err}"))),
        };
        size += chunk.len() as u64;
        if size > max {
            break Some(too_large(max));
        }
        if head.len() < SIGNATURE_BYTES {
            let take = (SIGNATURE_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            if head.len() == SIGNATURE_BYTES && !matches_signature(&content_type, &head) {
                break Some(not_what_it_claims(&content_type));
            }
        }
        if let Err(err) = sink.write(&chunk, files).await {
            break Some(unavailable("upload", err));
        }
    };
    let refused = refused.or_else(|| {
        if size == 0 {
            Some(bad("the file is empty"))
        } else if !matches_signature(&content_type, &head) {
            // Shorter than the signature: checked once it all arrived.
            Some(not_what_it_claims(&content_type))
        } else {
            None
        }
    });
    if let Some(err) = refused {
        sink.abort().await;
        return Err(err);
    }
    sink.finish(files, &path).await.map_err(|err| unavailable("upload", err))?;
    let meta = FileMeta {
        id: id.clone(),
        room: room.clone(),
        uploader: identity.user.id.clone(),
        name,
        content_type,
        size,
        created_ms: now_ms(),
        message: None,
    };
    let unreferenced = Duration::from_millis(files.settings.unreferenced_ttl_ms);
    if let Err(err) = files.index.create(&meta, unreferenced).await {
        let _ = files.store.delete(&path).await;
        return Err(unavailable("indexing the upload", err));
    }
    node.metrics.files_uploaded.inc();
    node.metrics.file_bytes_uploaded.inc_by(size);
    tracing::debug!(room = %room, id, size, user = %meta.uploader, "file uploaded");
    Ok(HttpResponse::Created().json(serde_json::json!({
        "id": id,
        "room": room,
        "name": meta.name,
        "size": size,
        "content_type": meta.content_type,
        "url": Files::url(&room, &id),
    })))
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(ErrorCode::TooLarge, format!("the file is over {max} bytes"))
}

fn not_what_it_claims(content_type: &str) -> ApiError {
    ApiError::new(ErrorCode::UnsupportedType, format!("the bytes are not {content_type}"))
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such file (unknown, expired or deleted)")
}

/// A `Range: bytes=…` header as the part of a file of `size` bytes it asks
/// for: `Ok(None)` for the whole file (no header, several ranges, or one
/// this does not read), `Err(())` when nothing of the file is in it.
fn requested_range(req: &HttpRequest, size: u64) -> Result<Option<std::ops::Range<u64>>, ()> {
    let Some(spec) = req.headers().get(header::RANGE).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let Some(spec) = spec.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else { return Ok(None) };
    let (start, end) = (start.trim(), end.trim());
    let range = match (start.parse::<u64>(), end.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => start..end.saturating_add(1).min(size),
        (Ok(start), Err(_)) if end.is_empty() => start..size,
        (Err(_), Ok(suffix)) if start.is_empty() && suffix > 0 => size.saturating_sub(suffix)..size,
        _ => return Ok(None),
    };
    if range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

async fn download(
    req: HttpRequest,
    node: web::Data<Node>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (identity, _) = identify(&node, req.head())?;
    let (room, id) = path.into_inner();
    let Ok(room) = RoomName::parse(&room) else { return Err(not_found()) };
    if !is_file_id(&id) {
        return Err(not_found());
    }
    if !identity.rooms.allows(&room) {
        return Err(ApiError::new(ErrorCode::Forbidden, format!("room {room} is not allowed")));
    }
    let files = &node.files;
    let meta = files.index.get(&room, &id).await.map_err(|err| unavailable("download", err))?.ok_or_else(not_found)?;
    let etag = format!("\"{id}\"");
    let not_modified =
        req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(&etag));
    if not_modified {
        return Ok(HttpResponse::NotModified().insert_header((header::ETAG, etag)).finish());
    }
    let range = match requested_range(&req, meta.size) {
        Ok(range) => range,
        Err(()) => {
            return Ok(HttpResponse::build(StatusCode::RANGE_NOT_SATISFIABLE)
                .insert_header((header::CONTENT_RANGE, format!("bytes */{}", meta.size)))
                .json(
                    serde_json::json!({"error": {"code": "bad_request", "message": "the range is outside the file"}}),
                ));
        }
    };
    let options = GetOptions { range: range.clone().map(GetRange::Bounded), ..GetOptions::default() };
    let stored = match files.store.get_opts(&Files::object_path(&room, &id), options).await {
        Ok(stored) => stored,
        Err(object_store::Error::NotFound { .. }) => return Err(not_found()),
        Err(err) => return Err(unavailable("download", err)),
    };
    let length = range.as_ref().map_or(meta.size, |r| r.end - r.start);
    let mut response = match &range {
        Some(r) => {
            let mut partial = HttpResponse::PartialContent();
            partial.insert_header((header::CONTENT_RANGE, format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size)));
            partial
        }
        None => HttpResponse::Ok(),
    };
    let inline = INLINE_TYPES.contains(&meta.content_type.as_str());
    response
        .content_type(meta.content_type.as_str())
        .insert_header((header::ETAG, etag))
        .insert_header((header::ACCEPT_RANGES, HeaderValue::from_static("bytes")))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .insert_header((header::CONTENT_DISPOSITION, disposition(inline, &meta.name)))
        // Nothing a file holds runs as this origin, even opened directly.
        .insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400")))
        .no_chunking(length);
    node.metrics.file_bytes_downloaded.inc_by(length);
    let body = stored.into_stream().map(|part| part.map_err(actix_web::error::ErrorServiceUnavailable));
    Ok(response.streaming(body))
}

/// `inline` (images) or `attachment`, with the name as an ASCII fallback
/// and in full (RFC 6266).
fn disposition(inline: bool, name: &str) -> header::ContentDisposition {
    use header::{Charset, DispositionParam, DispositionType, ExtendedValue};
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' { c } else { '_' })
        .collect();
    header::ContentDisposition {
        disposition: if inline { DispositionType::Inline } else { DispositionType::Attachment },
        parameters: vec![
            DispositionParam::Filename(ascii),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: Charset::Ext("UTF-8".to_owned()),
                language_tag: None,
                value: name.as_bytes().to_vec(),
            }),
        ],
    }
}
