//! Room requests: `join` (with `since` resumes), `leave`, `members`, and
//! `history` (of a room, or of one of the user's DM conversations).
//!
//! A join is gapless: the hub starts holding the room's frames for the
//! session before anything is read, the node's subscription to the room is
//! awaited, then the history is read ([`crate::engine::catch_up`], the same
//! read that repairs gaps), the user's read cursor created or read,
//! presence recorded and members listed; `joined` goes out with the frames
//! held meanwhile that are newer than its history.

use actix::Context;

use chat_shared::protocol::{Member, RequestId, RoomName, ServerFrame, Thread, TypingState, DEFAULT_HISTORY_LIMIT};

use super::WsSession;
use crate::engine::{catch_up, BackendError, Cursor, CursorMove, Engine, Page, SessionInfo, Summary, Window};

impl WsSession {
    pub(super) fn join(
        &mut self,
        re: Option<RequestId>,
        room: RoomName,
        since: Option<u64>,
        epoch: Option<String>,
        limit: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        let started = std::time::Instant::now();
        let hub = self.node.hub.clone();
        let first = !self.in_room(&room);
        let size = self.node.settings.cluster.history.size;
        let limit = limit.unwrap_or(DEFAULT_HISTORY_LIMIT).min(size as u64) as usize;
        let window = since.map_or(Window::latest(limit), |since| Window::after(since, size));
        let Some((subscribed, cached)) = hub.join(&self.info.user.id, self.id(), &room, window, epoch.as_deref())
        else {
            return;
        };
        let (engine, info, target, wanted_epoch) =
            (self.engine().clone(), self.info.clone(), room.clone(), epoch.clone());
        let seed = hub.clone();
        let request = async move {
            subscribed.await?;
            let from_history = cached.is_none();
            let result = join_steps(&engine, &target, &info, window, wanted_epoch, limit, cached, size).await;
            match &result {
                Ok(state) if from_history => seed.seed_recent(&target, &state.replay),
                Ok(_) => {}
                // Presence may have been recorded before a later step failed.
                Err(_) if first => {
                    let _ = engine.presence.leave(&target, &info).await;
                }
                Err(_) => {}
            }
            result
        };
        self.wait_for(ctx, request, move |result, act, _| match result {
            Ok(JoinState { members, replay, read }) => {
                let recovered = is_recovered(since, epoch.as_deref(), &replay);
                let seq = replay.seq;
                let frame = ServerFrame::Joined {
                    re,
                    room: room.clone(),
                    seq,
                    epoch: replay.epoch,
                    members,
                    history: replay.messages,
                    recovered,
                    read_seq: read.read_seq,
                    unread: read.unread,
                };
                hub.complete_join(&room, act.id(), frame.to_json(), seq);
                act.node.metrics.join_seconds.observe(started.elapsed().as_secs_f64());
            }
            Err(err) => {
                hub.abort_join(&act.info.user.id, act.id(), &room);
                act.reply_backend_error(re, "join", &err);
            }
        });
    }

    pub(super) fn leave(&mut self, re: Option<RequestId>, room: RoomName, ctx: &mut Context<Self>) {
        let (engine, info, target) = (self.engine().clone(), self.info.clone(), room.clone());
        let request = async move { engine.presence.leave(&target, &info).await };
        self.wait_for(ctx, request, move |result, act, ctx| match result {
            Ok(()) => {
                if act.node.hub.leave(&act.info.user.id, act.id(), &room) {
                    act.publish_typing(None, room.clone(), TypingState::Stop, ctx);
                }
                act.reply(&ServerFrame::Left { re, room });
            }
            Err(err) => act.reply_backend_error(re, "leave", &err),
        });
    }

    pub(super) fn members(&mut self, re: Option<RequestId>, room: RoomName, ctx: &mut Context<Self>) {
        let presence = self.engine().presence.clone();
        let request = async move {
            let members = presence.members(&room).await;
            (room, members)
        };
        self.wait_for(ctx, request, move |(room, result), act, _| match result {
            Ok(members) => act.reply(&ServerFrame::Members { re, room, members }),
            Err(err) => act.reply_backend_error(re, "members", &err),
        });
    }

    /// A page of a room's events or of a DM conversation; the conversation is
    /// always one of this session's user (with `dm`, the other user).
    pub(super) fn history(&mut self, re: Option<RequestId>, of: Thread, window: Window, ctx: &mut Context<Self>) {
        let (history, me) = (self.engine().history.clone(), self.info.user.id.clone());
        let request = async move {
            let page = match &of {
                Thread::Room(room) => history.read_room(room, window).await,
                Thread::Dm(other) => history.read_conversation(&me, other, window).await,
            };
            (of, page.map(|page| page.messages))
        };
        self.wait_for(ctx, request, move |(of, result), act, _| match result {
            Ok(messages) => {
                let (room, dm) = match of {
                    Thread::Room(room) => (Some(room), None),
                    Thread::Dm(other) => (None, Some(other)),
                };
                act.reply(&ServerFrame::History { re, room, dm, messages });
            }
            Err(err) => act.reply_backend_error(re, "history", &err),
        });
    }
}

/// What a join found.
struct JoinState {
    members: Vec<Member>,
    replay: Page,
    /// The user's read state in the room.
    read: Summary,
}

/// The engine side of a join, after the subscription: the replay of
/// `window` (`cached` from the room's recent events, or a history read: the
/// step most likely to be refused, so a refusal announces nothing), then two
/// chains at once: the read cursor (created at the room's seq by a user's
/// first join) and its unread count; and presence (announced with the
/// user's status) and members. `size` is `history.size`, the most a resume
/// replays.
#[allow(clippy::too_many_arguments)]
async fn join_steps(
    engine: &Engine,
    room: &RoomName,
    info: &SessionInfo,
    window: Window,
    epoch: Option<String>,
    limit: usize,
    cached: Option<Page>,
    size: usize,
) -> Result<JoinState, BackendError> {
    let replay = match cached {
        Some(page) => page,
        None => {
            let mut replay = catch_up(engine.history.as_ref(), room, window, size).await?;
            if window.after.is_some() && epoch.as_ref().is_some_and(|e| *e != replay.epoch) {
                // The client's seqs name a lost history: start it afresh.
                replay = engine.history.read_room(room, Window::latest(limit)).await?;
            }
            replay
        }
    };
    let me = &info.user.id;
    let thread = Thread::Room(room.clone());
    let here = Cursor { seq: replay.seq, epoch: replay.epoch.clone() };
    let read = async {
        let (cursor, _) = engine.history.set_cursor(me, &thread, here, CursorMove::Create).await?;
        Ok::<_, BackendError>(
            engine.history.summaries(me, &[(thread.clone(), cursor)]).await?.pop().unwrap_or_default(),
        )
    };
    let presence = async {
        let status = engine.presence.status(me).await?;
        engine.presence.join(room, info, status.as_ref()).await?;
        engine.presence.members(room).await
    };
    let (read, members) = futures_util::future::try_join(read, presence).await?;
    Ok(JoinState { members, replay, read })
}

/// `joined.recovered`: a resume that replayed everything after `since` in the
/// same history.
fn is_recovered(since: Option<u64>, epoch: Option<&str>, replay: &Page) -> bool {
    let Some(since) = since else { return false };
    if epoch.is_some_and(|e| e != replay.epoch) || since > replay.seq {
        return false;
    }
    let (first, last) = (replay.messages.first().map(|m| m.seq), replay.messages.last().map(|m| m.seq));
    since == replay.seq || (first == Some(since + 1) && last == Some(replay.seq))
}
