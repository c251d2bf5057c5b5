//! The wire shapes of the history API, shared by the service and its client.
//!
//! `GET /v1/rooms/{room}/messages` and
//! `GET /v1/users/{id}/conversations/{other}/messages` take
//! `after`, `before` (seqs) and `limit` (default [`DEFAULT_LIMIT`], clamped to
//! `history.size`). With `after`: the oldest `limit` messages above it (and
//! below `before`), for reading forward; otherwise the newest `limit` below
//! `before` (all when absent), for paging back. Either way oldest first.

use std::collections::HashMap;

use crate::store::Window;

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
