//! The wire shapes of the history API, shared by the service and its client.
//!
//! `GET /v1/rooms/{room}/messages` and
//! `GET /v1/users/{id}/conversations/{other}/messages` take
//! `after`, `before` (seqs) and `limit` (default [`DEFAULT_LIMIT`], clamped to
//! `history.size`). With `after`: the oldest `limit` messages above it (and
//! below `before`), for reading forward; otherwise the newest `limit` below
//! `before` (all when absent), for paging back. Either way oldest first.
//!
//! The replies are a [`Page`] with what it is of: [`RoomReply`]
//! (`{"room", "seq", "epoch", "messages"}`) and [`ConversationReply`]
//! (`{"users", "seq", "messages"}`); a client reads either back as a [`Page`].

use std::collections::HashMap;

use serde::Serialize;

use chat_shared::protocol::{RoomName, UserId};

use crate::{Page, Window};

/// Messages per reply when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;

/// A query the API refuses, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadQuery(pub String);

fn number(name: &str, value: &str) -> Result<u64, BadQuery> {
    // Digits only: no sign, no fraction, no blanks.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadQuery(format!("{name} must be a non-negative integer, not {value:?}")));
    }
    value.parse().map_err(|_| BadQuery(format!("{name} is too large: {value}")))
}

/// Parses `after`, `before` and `limit`; `max_limit` is `history.size`.
///
/// # Errors
/// An unknown parameter or a value that is not a non-negative integer.
pub fn parse_window(query: &HashMap<String, String>, max_limit: usize) -> Result<Window, BadQuery> {
    let mut window = Window { after: None, before: None, limit: DEFAULT_LIMIT.min(max_limit) };
    for (name, value) in query {
        match name.as_str() {
            "after" => window.after = Some(number(name, value)?),
            "before" => window.before = Some(number(name, value)?),
            "limit" => window.limit = usize::try_from(number(name, value)?).unwrap_or(usize::MAX).min(max_limit),
            other => return Err(BadQuery(format!("unknown parameter {other:?}; use after, before, limit"))),
        }
    }
    Ok(window)
}

/// The reply of `GET /v1/rooms/{room}/messages`.
#[derive(Debug, Serialize)]
pub struct RoomReply<'a> {
    pub room: &'a RoomName,
    #[serde(flatten)]
    pub page: &'a Page,
}

/// The reply of `GET /v1/users/{id}/conversations/{other}/messages`.
#[derive(Debug, Serialize)]
pub struct ConversationReply<'a> {
    pub users: [&'a UserId; 2],
    #[serde(flatten)]
    pub page: &'a Page,
}

/// The query string of a window (for the client).
pub fn window_query(window: &Window) -> Vec<(&'static str, String)> {
    let mut query = vec![("limit", window.limit.to_string())];
    if let Some(after) = window.after {
        query.push(("after", after.to_string()));
    }
    if let Some(before) = window.before {
        query.push(("before", before.to_string()));
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn windows_parse_and_clamp() {
        assert_eq!(parse_window(&query(&[]), 1000).unwrap(), Window::latest(50));
        assert_eq!(parse_window(&query(&[]), 10).unwrap(), Window::latest(10));
        let window = parse_window(&query(&[("after", "5"), ("before", "9"), ("limit", "5000")]), 1000).unwrap();
        assert_eq!(window, Window { after: Some(5), before: Some(9), limit: 1000 });
        assert_eq!(
            parse_window(&window_query(&window).into_iter().map(|(k, v)| (k.to_owned(), v)).collect(), 1000).unwrap(),
            window
        );
    }

    #[test]
    fn replies_read_back_as_pages() {
        use std::sync::Arc;
        let json = r#"{"type":"message","room":"r","text":"hi","seq":7,"ts":1}"#;
        let raw = serde_json::value::RawValue::from_string(json.to_owned()).unwrap();
        let page = Page {
            seq: 9,
            epoch: "e1".into(),
            messages: vec![chat_shared::protocol::StoredMessage { seq: 7, json: Arc::from(raw) }],
        };
        let room = RoomName::parse("r").unwrap();
        let text = serde_json::to_string(&RoomReply { room: &room, page: &page }).unwrap();
        assert_eq!(text, format!(r#"{{"room":"r","seq":9,"epoch":"e1","messages":[{json}]}}"#));
        let back: Page = serde_json::from_str(&text).unwrap();
        assert_eq!((back.seq, back.epoch.as_str(), back.messages[0].seq), (9, "e1", 7));
        assert_eq!(back.messages[0].json.get(), json, "each event exactly as stored");
        let users = [&UserId::parse("a").unwrap(), &UserId::parse("b").unwrap()];
        let conversation = Page { epoch: String::new(), ..page };
        let text = serde_json::to_string(&ConversationReply { users, page: &conversation }).unwrap();
        assert!(text.starts_with(r#"{"users":["a","b"],"seq":9,"messages":"#), "no epoch for conversations: {text}");
    }

    #[test]
    fn bad_values_are_named() {
        for (name, value) in
            [("limit", "-1"), ("before", "1.5"), ("after", ""), ("after", " 1"), ("limit", "99999999999999999999999")]
        {
            let err = parse_window(&query(&[(name, value)]), 1000).unwrap_err();
            assert!(err.0.starts_with(name), "{err}");
        }
        assert!(parse_window(&query(&[("since", "1")]), 1000).unwrap_err().0.contains("since"));
    }
}
