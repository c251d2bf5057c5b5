//! The history keyspace. Room keys share the room's hash tag (`{r:ROOM}`, see
//! `chat_shared::keys`), so the append script touches one Redis Cluster slot
//! together with the room's channel; a conversation's keys share `{d:…}`, and
//! a user's offline queue the user's tag `{u:USER}`.

use chat_shared::keys::{room_key, user_key, PREFIX};
use chat_shared::protocol::{RoomName, UserId};

/// A room's last seq (`INCR`).
pub fn room_seq(room: &RoomName) -> String {
    room_key(room, "seq")
}

/// A room's capped history: a list of `message` frames, oldest first.
pub fn room_history(room: &RoomName) -> String {
    room_key(room, "history")
}

/// A room's history epoch: changes when the history was lost or expired.
pub fn room_epoch(room: &RoomName) -> String {
    room_key(room, "epoch")
}

/// The remembered result of a `send` with a `client_id`.
pub fn room_client_id(room: &RoomName, user: &UserId, client_id: &str) -> String {
    room_key(room, &format!("cid:{}:{user}{client_id}", user.as_str().len()))
}

/// The seqs of a room's `message` events that are not deleted (a sorted
/// set, score = member = seq), for unread counts.
pub fn room_messages(room: &RoomName) -> String {
    room_key(room, "msgs")
}

/// The seqs of a room's `message` events by `user` (a sorted set), for
/// unread counts (a user's own messages are not unread).
pub fn room_authored(room: &RoomName, user: &UserId) -> String {
    room_key(room, &format!("by:{}:{user}", user.as_str().len()))
}

/// Who holds which emoji on which message of a room (a hash: `T␟E␟U` for
/// each holder, `T␟E` its holder count, `T` the message's distinct emoji).
pub fn room_reactions(room: &RoomName) -> String {
    room_key(room, "reactions")
}

/// Every field of [`room_reactions`] with its message's seq as its score,
/// so that the fields of messages trimmed from the history are dropped with
/// them (at most 1000 fields per append).
pub fn room_reaction_index(room: &RoomName) -> String {
    room_key(room, "reactions_by_seq")
}

/// The seq of a room's newest `message` event.
pub fn room_last_message(room: &RoomName) -> String {
    room_key(room, "last")
}

/// A user's read cursors (a hash: `r:ROOM` → `SEQ:EPOCH`, `d:USER` → `SEQ:`).
pub fn user_cursors(user: &UserId) -> String {
    user_key(user, "cursors")
}

/// When each of a user's cursors was last set or moved (a sorted set of the
/// cursor hash's fields, score = ms), to cap them and order them.
pub fn user_cursor_order(user: &UserId) -> String {
    user_key(user, "cursor_order")
}

/// DMs waiting for a user with no session: a list of `dm` frames.
pub fn user_offline(user: &UserId) -> String {
    user_key(user, "offline")
}

/// The hash tag of the conversation between two users (order-independent);
/// the length prefix keeps ("ab","c") and ("a","bc") apart.
fn conversation_key(a: &UserId, b: &UserId, suffix: &str) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    format!("{PREFIX}:{{d:{}:{low}{high}}}:{suffix}", low.as_str().len())
}

/// A DM conversation's last seq.
pub fn conversation_seq(a: &UserId, b: &UserId) -> String {
    conversation_key(a, b, "seq")
}

/// A DM conversation's capped history: a list of `dm` frames, oldest first.
pub fn conversation_history(a: &UserId, b: &UserId) -> String {
    conversation_key(a, b, "history")
}

/// The seqs of a conversation's DMs sent by `from` (a sorted set).
pub fn conversation_authored(a: &UserId, b: &UserId, from: &UserId) -> String {
    conversation_key(a, b, &format!("by:{}:{from}", from.as_str().len()))
}

/// The remembered result of a `dm` with a `client_id` from `from`.
pub fn conversation_client_id(a: &UserId, b: &UserId, from: &UserId, client_id: &str) -> String {
    conversation_key(a, b, &format!("cid:{}:{from}{client_id}", from.as_str().len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_keys_share_the_room_channel_tag() {
        let room = RoomName::parse("lobby").unwrap();
        let user = UserId::parse("u}1").unwrap();
        for key in [room_seq(&room), room_history(&room), room_epoch(&room), room_client_id(&room, &user, "c")] {
            assert!(key.starts_with("chat:{r:lobby}:"), "{key}");
        }
        assert!(chat_shared::keys::room_channel(&room).starts_with("chat:{r:lobby}:"));
    }

    #[test]
    fn conversations_are_order_independent() {
        let a = UserId::parse("alice").unwrap();
        let b = UserId::parse("bob").unwrap();
        assert_eq!(conversation_seq(&a, &b), conversation_seq(&b, &a));
        assert_ne!(conversation_seq(&a, &b), conversation_seq(&a, &a));
        let (ab, c, a1, bc) = (
            UserId::parse("ab").unwrap(),
            UserId::parse("c").unwrap(),
            UserId::parse("a").unwrap(),
            UserId::parse("bc").unwrap(),
        );
        assert_ne!(conversation_seq(&ab, &c), conversation_seq(&a1, &bc));
    }
}
