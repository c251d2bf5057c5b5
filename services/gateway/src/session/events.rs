//! Requests that store a room event: `send` (a message, maybe a reply),
//! `edit`, `delete` and `react`. Each is one call to the store's atomic
//! append ([`crate::engine::HistoryStore::append_room`]), which checks the
//! target, authorship and reactions against the history it appends to; the
//! session only turns the outcome into `ack` or `error`.
//!
//! A `send` with attachments claims its files first (`crate::files`), and
//! binds them to the stored message's seq (or gives them back); a stored
//! `delete` removes its message's files before the `ack`.

use std::time::Instant;

use actix::Context;

use chat_shared::protocol::{ClientId, RequestId, RoomEventKind, RoomName, ServerFrame, MAX_EMOJI_PER_MESSAGE};
use chat_shared::ErrorCode;

use super::dispatch::user_rate_gate;
use super::WsSession;
use crate::engine::{BackendResult, Engine, Outcome, RoomDraft};
use crate::files::{is_file_id, Claim, Files};

/// Why an event was refused before the store saw it.
enum Refused {
    /// Over the user's rate: wait this many milliseconds.
    Rate(u64),
    /// An attachment that is not the user's upload to the room.
    FileNotFound(String),
    /// An attachment already on another message.
    FileAttached(String),
}

impl WsSession {
    /// Stores `event` in `room` (already checked: joined, text within
    /// limits), with the files `attachments` names (a `send`'s; else empty).
    pub(super) fn append_event(
        &mut self,
        re: Option<RequestId>,
        room: RoomName,
        event: RoomEventKind,
        client_id: Option<ClientId>,
        attachments: Vec<String>,
        ctx: &mut Context<Self>,
    ) {
        let engine = self.engine().clone();
        let files = self.node.files.clone();
        let kind = event.name();
        let target = event.target();
        let deleted = matches!(event, RoomEventKind::Delete { .. }).then_some(target).flatten();
        let draft = RoomDraft::new(room.clone(), self.info.user.clone(), event, client_id);
        let started = Instant::now();
        let user_rate = self.node.settings.gateway.limits.user_messages_per_second;
        let request = async move {
            if let Some(wait) = user_rate_gate(&engine, &draft.from.id, user_rate).await? {
                return Ok(Err(Refused::Rate(wait)));
            }
            let room = draft.room.clone();
            let outcome = if attachments.is_empty() {
                engine.history.append_room(draft).await?
            } else {
                match append_with_files(&engine, &files, draft, &attachments).await? {
                    Ok(outcome) => outcome,
                    Err(refused) => return Ok(Err(refused)),
                }
            };
            if let (Outcome::Stored(_), Some(target)) = (&outcome, deleted) {
                files.message_deleted(&room, target).await;
            }
            Ok(Ok(outcome))
        };
        self.wait_for(ctx, request, move |result: BackendResult<Result<Outcome, Refused>>, act, _| {
            let outcome = match result {
                Ok(Err(Refused::Rate(wait))) => return act.reply_user_rate_limited(re, wait),
                Ok(Err(Refused::FileNotFound(id))) => {
                    let message = format!("no file {id} of yours in {room} (unknown, expired, or another's)");
                    return act.reply_error(re, ErrorCode::NotFound, message);
                }
                Ok(Err(Refused::FileAttached(id))) => {
                    let message = format!("file {id} is attached to another message");
                    return act.reply_error(re, ErrorCode::BadRequest, message);
                }
                Ok(Ok(outcome)) => outcome,
                Err(err) => return act.reply_backend_error(re, kind, &err),
            };
            let target = target.unwrap_or(0);
            let (code, message) = match outcome {
                Outcome::Stored(appended) => {
                    act.node.metrics.publish_seconds.observe(started.elapsed().as_secs_f64());
                    if kind == "message" {
                        act.node.metrics.messages_published.inc();
                    } else {
                        act.node.metrics.room_events_published.with_label_values(&[kind]).inc();
                    }
                    let ack = ServerFrame::Ack {
                        re,
                        room: Some(room),
                        to: None,
                        seq: Some(appended.seq),
                        ts: appended.ts,
                        delivered: None,
                        changed: None,
                    };
                    return act.reply(&ack);
                }
                Outcome::Unchanged { ts } => {
                    let ack = ServerFrame::Ack {
                        re,
                        room: Some(room),
                        to: None,
                        seq: None,
                        ts,
                        delivered: None,
                        changed: Some(false),
                    };
                    return act.reply(&ack);
                }
                Outcome::NotFound => {
                    (ErrorCode::NotFound, format!("message {target} of {room} is not in its history, or was deleted"))
                }
                Outcome::NotAuthor => {
                    (ErrorCode::Forbidden, format!("only the author of message {target} may {kind} it"))
                }
                Outcome::TooManyEmoji => (
                    ErrorCode::BadRequest,
                    format!("message {target} holds {MAX_EMOJI_PER_MESSAGE} distinct emoji already"),
                ),
            };
            act.reply_error(re, code, message);
        });
    }
}

/// Claims the files of a `send`, stores the message carrying them, and binds
/// them to its seq; a message not stored gives its claim back.
async fn append_with_files(
    engine: &Engine,
    files: &Files,
    mut draft: RoomDraft,
    ids: &[String],
) -> BackendResult<Result<Outcome, Refused>> {
    if let Some(id) = ids.iter().find(|id| !is_file_id(id)) {
        return Ok(Err(Refused::FileNotFound(id.clone())));
    }
    let room = draft.room.clone();
    match files.index.claim(&room, &draft.from.id, ids, draft.client_id.as_ref()).await? {
        Claim::Claimed(metas) => {
            if let RoomEventKind::Message { attachments, .. } = &mut draft.event {
                *attachments = metas.iter().map(Files::attachment).collect();
            }
        }
        // A repeated `client_id`: the store answers with the first `ack`.
        Claim::Repeat => {}
        Claim::NotFound(id) => return Ok(Err(Refused::FileNotFound(id))),
        Claim::Attached(id) => return Ok(Err(Refused::FileAttached(id))),
    }
    let outcome = engine.history.append_room(draft).await;
    let kept = match &outcome {
        Ok(Outcome::Stored(stored)) => files.index.bind(&room, ids, stored.seq, files.retention).await,
        _ => files.index.release(&room, ids).await,
    };
    if let Err(err) = kept {
        tracing::warn!(room = %room, cause = %err, "a message's files were not bound or released");
    }
    outcome.map(Ok)
}
