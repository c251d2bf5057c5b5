//! Names and ids that have rules ([`RoomName`], [`UserId`], [`DisplayName`],
//! [`ClientId`]): newtypes that can only hold valid values, checked when
//! parsed, so code that holds one never checks again.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 64;
/// Longest user id, in characters.
pub const MAX_USER_ID_CHARS: usize = 128;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest `client_id`, in characters.
pub const MAX_CLIENT_ID_CHARS: usize = 128;
/// Longest reaction emoji, in bytes of UTF-8.
pub const MAX_EMOJI_BYTES: usize = 32;
/// Longest status text, in bytes of UTF-8.
pub const MAX_STATUS_TEXT_BYTES: usize = 128;
/// Most distinct emoji one message holds.
pub const MAX_EMOJI_PER_MESSAGE: usize = 50;
/// Default number of messages in `joined.history` and `history` replies.
pub const DEFAULT_HISTORY_LIMIT: u64 = 50;

/// A value that broke one of the protocol's naming rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub &'static str);

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "Arc<str>")]
        pub struct $name(Arc<str>);

        impl $name {
            /// Checks `value` against the protocol's rules.
            ///
            /// # Errors
            /// [`InvalidName`] saying which rule was broken.
            pub fn parse(value: &str) -> Result<Self, InvalidName> {
                let check: fn(&str) -> Result<(), InvalidName> = $check;
                check(value)?;
                Ok($name(Arc::from(value)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidName;
            fn try_from(value: String) -> Result<Self, InvalidName> {
                let check: fn(&str) -> Result<(), InvalidName> = $check;
                check(&value)?;
                Ok($name(Arc::from(value)))
            }
        }

        impl From<$name> for Arc<str> {
            fn from(value: $name) -> Arc<str> {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

fn char_count_between(value: &str, max: usize, what: &'static str) -> Result<(), InvalidName> {
    let n = value.chars().count();
    if n == 0 {
        return Err(InvalidName(what));
    }
    if n > max {
        return Err(InvalidName(what));
    }
    Ok(())
}

validated_string!(
    /// A room name: 1 to 64 characters of `A-Z a-z 0-9 . _ : -`.
    RoomName,
    |v| {
        if v.is_empty()
            || v.len() > MAX_ROOM_NAME_CHARS
            || !v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(InvalidName("a room name is 1 to 64 characters of A-Z a-z 0-9 . _ : -"));
        }
        Ok(())
    }
);

validated_string!(
    /// A user id: 1 to 128 characters, no control characters.
    UserId,
    |v| {
        char_count_between(v, MAX_USER_ID_CHARS, "a user id is 1 to 128 characters without control characters")?;
        if v.chars().any(char::is_control) {
            return Err(InvalidName("a user id is 1 to 128 characters without control characters"));
        }
        Ok(())
    }
);

validated_string!(
    /// A display name: 1 to 64 characters, no control characters.
    DisplayName,
    |v| {
        char_count_between(v, MAX_DISPLAY_NAME_CHARS, "a display name is 1 to 64 characters without control characters")?;
        if v.chars().any(char::is_control) {
            return Err(InvalidName("a display name is 1 to 64 characters without control characters"));
        }
        Ok(())
    }
);

validated_string!(
    /// A client-chosen idempotency key: 1 to 128 characters.
    ClientId,
    |v| char_count_between(v, MAX_CLIENT_ID_CHARS, "client_id is a string of 1 to 128 characters")
);

validated_string!(
    /// A reaction: 1 to 32 bytes of UTF-8 without whitespace or control characters.
    Emoji,
    |v| {
        if v.is_empty() || v.len() > MAX_EMOJI_BYTES || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidName("an emoji is 1 to 32 bytes without whitespace or control characters"));
        }
        Ok(())
    }
);

validated_string!(
    /// A status text: 0 to 128 bytes of UTF-8 without control characters.
    StatusText,
    |v| {
        if v.len() > MAX_STATUS_TEXT_BYTES || v.chars().any(char::is_control) {
            return Err(InvalidName("a status text is 0 to 128 bytes without control characters"));
        }
        Ok(())
    }
);

impl DisplayName {
    /// The display name a user gets when none is given: the user id, cut to
    /// the display-name length.
    pub fn from_user_id(id: &UserId) -> DisplayName {
        let cut: String = id.as_str().chars().take(MAX_DISPLAY_NAME_CHARS).collect();
        DisplayName(Arc::from(cut))
    }
}
