//! Redis key and channel names, one place for every service.
//!
//! Everything of one room shares the hash tag `{r:ROOM}`, so a room's seq,
//! history, idempotency keys, presence and pub/sub channel live in one Redis
//! Cluster slot and one script can touch them all. Likewise `{u:USER}` for a
//! user's channel, offline queue, connections and rate, and `{d:…}` for a DM
//! conversation. Room names cannot contain braces; a user id that does only
//! shortens its own tag, which stays the same for all of that user's keys.
//!
//! The history keys (seq, history, epoch, idempotency, offline queue) are
//! named by the history-store library (`history_store::keys`), under these same tags.

use crate::protocol::{DisplayName, RoomName, UserId, UserRef};

/// Every key and channel starts with this.
pub const PREFIX: &str = "chat";

/// A key (or channel) of one room: `chat:{r:ROOM}:SUFFIX`.
pub fn room_key(room: &RoomName, suffix: &str) -> String {
    format!("{PREFIX}:{{r:{room}}}:{suffix}")
}

/// A key (or channel) of one user: `chat:{u:USER}:SUFFIX`.
pub fn user_key(user: &UserId, suffix: &str) -> String {
    format!("{PREFIX}:{{u:{user}}}:{suffix}")
}

/// Hash session → user id: the room's sessions, cluster-wide.
pub fn room_presence_sessions(room: &RoomName) -> String {
    room_key(room, "psess")
}

/// Hash user id → number of the user's sessions in the room.
pub fn room_presence_users(room: &RoomName) -> String {
    room_key(room, "pusers")
}

/// Hash user id → display name, for `members`.
pub fn room_presence_names(room: &RoomName) -> String {
    room_key(room, "pnames")
}

/// The room's online users from its [`room_presence_names`] hash, sorted by id.
pub fn members_from_names(names: std::collections::HashMap<String, String>) -> Vec<UserRef> {
    let mut members: Vec<UserRef> = names
        .into_iter()
        .filter_map(|(id, name)| {
            let id = UserId::parse(&id).ok()?;
            let name = DisplayName::parse(&name).unwrap_or_else(|_| DisplayName::from_user_id(&id));
            Some(UserRef { id, name })
        })
        .collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    members
}

/// The room's pub/sub channel: messages, presence, typing.
pub fn room_channel(room: &RoomName) -> String {
    room_key(room, "ch")
}

/// A user's pub/sub channel: DMs and copies to the user's other sessions.
pub fn user_channel(user: &UserId) -> String {
    user_key(user, "ch")
}

/// Hash session → node: the user's open connections, cluster-wide.
pub fn user_connections(user: &UserId) -> String {
    user_key(user, "conns")
}

/// Hash room → the user's sessions in it.
pub fn user_rooms(user: &UserId) -> String {
    user_key(user, "rooms")
}

/// The statuses users set, while connected: one hash (user id →
/// `{"state","text"}` JSON), so that a room's members' statuses are one
/// `HMGET` whatever their number (in a Redis Cluster, one slot).
pub const STATUSES: &str = "chat:{statuses}";

/// When the user's last connection closed (ms since the epoch).
pub fn user_last_seen(user: &UserId) -> String {
    user_key(user, "seen")
}

/// The user's cluster-wide message-rate bucket.
pub fn user_rate(user: &UserId) -> String {
    user_key(user, "rate")
}

/// A gateway node's lease: exists while the node is alive.
pub fn node_lease(node: &str) -> String {
    format!("{PREFIX}:node:{{{node}}}:lease")
}

/// What a node holds, for sweeping it when it crashes: a set of
/// [`node_room_entry`] and [`node_connection_entry`] strings.
pub fn node_sessions(node: &str) -> String {
    format!("{PREFIX}:node:{{{node}}}:sessions")
}

/// Every gateway node that has held a lease: a sorted set, node → last
/// lease refresh (ms since the epoch). A node whose lease key is gone but
/// which is still listed here crashed and awaits a sweep.
pub const NODES: &str = "chat:nodes";

/// A session's membership of a room, in [`node_sessions`]:
/// `r␟ROOM␟SESSION␟USER␟NAME`.
pub fn node_room_entry(room: &RoomName, session: &str, user: &UserId, name: &str) -> String {
    format!("r\u{1f}{room}\u{1f}{session}\u{1f}{user}\u{1f}{name}")
}

/// A session's connection, in [`node_sessions`]: `c␟SESSION␟USER`.
pub fn node_connection_entry(session: &str, user: &UserId) -> String {
    format!("c\u{1f}{session}\u{1f}{user}")
}

/// Every node listens here for operator notices.
pub const BROADCAST_CHANNEL: &str = "chat:{broadcast}:ch";
/// Every node listens here for node-to-node commands.
pub const CONTROL_CHANNEL: &str = "chat:{control}:ch";

/// What a channel name carries, parsed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    Room(RoomName),
    User(UserId),
    Broadcast,
    Control,
}

/// Parses a channel name made by this module.
pub fn parse_channel(channel: &str) -> Option<Channel> {
    match channel {
        BROADCAST_CHANNEL => return Some(Channel::Broadcast),
        CONTROL_CHANNEL => return Some(Channel::Control),
        _ => {}
    }
    if let Some(room) = channel.strip_prefix("chat:{r:").and_then(|rest| rest.strip_suffix("}:ch")) {
        return RoomName::parse(room).ok().map(Channel::Room);
    }
    if let Some(user) = channel.strip_prefix("chat:{u:").and_then(|rest| rest.strip_suffix("}:ch")) {
        return UserId::parse(user).ok().map(Channel::User);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_keys_share_one_hash_tag() {
        let room = RoomName::parse("lobby").unwrap();
        for key in [room_key(&room, "x"), room_presence_users(&room), room_presence_names(&room), room_channel(&room)] {
            assert!(key.starts_with("chat:{r:lobby}:"), "{key}");
        }
    }

    #[test]
    fn node_entries_split_into_their_fields() {
        let room = RoomName::parse("lobby").unwrap();
        let user = UserId::parse("a b|c").unwrap();
        let entry = node_room_entry(&room, "s-1", &user, "Alice");
        assert_eq!(entry.split('\u{1f}').collect::<Vec<_>>(), ["r", "lobby", "s-1", "a b|c", "Alice"]);
        let entry = node_connection_entry("s-1", &user);
        assert_eq!(entry.split('\u{1f}').collect::<Vec<_>>(), ["c", "s-1", "a b|c"]);
    }

    #[test]
    fn channels_parse_back() {
        let room = RoomName::parse("a.b:c-d_e").unwrap();
        let user = UserId::parse("weird}:ch user").unwrap();
        assert_eq!(parse_channel(&room_channel(&room)), Some(Channel::Room(room)));
        assert_eq!(parse_channel(&user_channel(&user)), Some(Channel::User(user)));
        assert_eq!(parse_channel(BROADCAST_CHANNEL), Some(Channel::Broadcast));
        assert_eq!(parse_channel(CONTROL_CHANNEL), Some(Channel::Control));
        assert_eq!(parse_channel("other"), None);
    }
}
