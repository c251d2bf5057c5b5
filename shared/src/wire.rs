//! The format of what travels on a pub/sub channel between nodes.
//!
//! One header line, then the body:
//!
//! ```text
//! KIND \x1f SEQ \x1f SKIP_USER \x1f SKIP_SESSION [\x1f ONLY_SESSION] \n BODY
//! ```
//!
//! `KIND` is a server frame's `type` (the body is that frame's JSON) or
//! `disconnect` (the body is a user id). Empty fields mean "none". The unit
//! separator (0x1f) cannot appear in user ids (no control characters) nor in
//! session ids, and serialised JSON holds no raw newline, so no escaping is
//! needed. Lua scripts that publish build the same header (`\31` in Lua).

/// The field separator of the header.
pub const SEPARATOR: char = '\u{1f}';

/// One decoded payload, borrowing from the raw text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub kind: &'a str,
    pub seq: Option<u64>,
    pub skip_user: Option<&'a str>,
    pub skip_session: Option<&'a str>,
    /// For one session only (a `signal` to one session); optional in the
    /// header, so headers of four fields (the Lua scripts') still decode.
    pub only_session: Option<&'a str>,
    pub body: &'a str,
}

/// The `KIND` of an operator disconnect; the body is the user id.
pub const DISCONNECT_KIND: &str = "disconnect";

impl Envelope<'_> {
    /// Renders the payload.
    pub fn encode(&self) -> String {
        let seq = self.seq.map(|s| s.to_string()).unwrap_or_default();
        let mut out = String::with_capacity(self.body.len() + 64);
        for (i, field) in
            [self.kind, &seq, self.skip_user.unwrap_or(""), self.skip_session.unwrap_or("")].into_iter().enumerate()
        {
            if i > 0 {
                out.push(SEPARATOR);
            }
            out.push_str(field);
        }
        if let Some(only) = self.only_session {
            out.push(SEPARATOR);
            out.push_str(only);
        }
        out.push('\n');
        out.push_str(self.body);
        out
    }

    /// Parses a payload; `None` for anything malformed.
    pub fn decode(payload: &str) -> Option<Envelope<'_>> {
        let (header, body) = payload.split_once('\n')?;
        let mut fields = header.split(SEPARATOR);
        let kind = fields.next().filter(|k| !k.is_empty())?;
        let seq = match fields.next()? {
            "" => None,
            digits => Some(digits.parse().ok()?),
        };
        let skip_user = fields.next().filter(|f| !f.is_empty());
        let skip_session = fields.next().filter(|f| !f.is_empty());
        let only_session = fields.next().filter(|f| !f.is_empty());
        Some(Envelope { kind, seq, skip_user, skip_session, only_session, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let env = Envelope {
            kind: "message",
            seq: Some(42),
            skip_user: Some("al|ice"),
            skip_session: None,
            only_session: None,
            body: r#"{"type":"message","text":"a\nb"}"#,
        };
        let text = env.encode();
        assert_eq!(Envelope::decode(&text), Some(env));
        let bare =
            Envelope { kind: "notice", seq: None, skip_user: None, skip_session: None, only_session: None, body: "{}" };
        assert_eq!(Envelope::decode(&bare.encode()), Some(bare));
        let one = Envelope { kind: "signal", skip_session: Some("s-1"), only_session: Some("s-2"), ..bare };
        assert_eq!(Envelope::decode(&one.encode()), Some(one));
    }

    #[test]
    fn lua_built_headers_decode() {
        // What the publish script writes: 'message\31' .. seq .. '\31\31\n' .. json
        let text = "message\u{1f}7\u{1f}\u{1f}\n{}";
        let env = Envelope::decode(text).unwrap();
        assert_eq!((env.kind, env.seq, env.skip_user, env.body), ("message", Some(7), None, "{}"));
    }

    #[test]
    fn malformed_payloads_are_refused() {
        for bad in ["", "no newline", "\u{1f}1\n{}", "message\u{1f}x\n{}"] {
            assert_eq!(Envelope::decode(bad), None, "{bad:?}");
        }
    }
}
