//! WebSocket frames on the wire, as pure functions: reading client frames
//! out of a buffer (one message at a time, fragments joined) and the header
//! of each server frame. No I/O here; [`super::conn`] does it.

use actix_codec::Decoder as _;
use actix_http::ws::{Codec, Frame, Item, ProtocolError};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

/// What a client sent, as the session sees it.
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub enum Incoming {
    Text(ByteString),
    /// A text message that is not UTF-8.
    InvalidText,
    Binary,
    Ping(Bytes),
    Pong(Bytes),
    Close,
    /// A frame, or a message of several, over `max_frame_bytes` (close 1009).
    TooBig,
    /// Anything else RFC 6455 forbids (close 1002).
    ProtocolError(String),
}

/// Reads client messages out of the connection's read buffer.
pub struct Reader {
    codec: Codec,
    max_bytes: usize,
    /// The fragments so far of a message sent in several frames (and
    /// whether it is text); `None` between messages.
    partial: Option<(bool, BytesMut)>,
    /// Set by a close or a broken rule: nothing after it is read.
    ended: bool,
}

impl Reader {
    /// Messages (and single frames) of at most `max_bytes` of payload.
    pub fn new(max_bytes: usize) -> Reader {
        Reader { codec: Codec::new().max_size(max_bytes), max_bytes, partial: None, ended: false }
    }

    /// The next whole message in `buf` (consumed from it), or `None` when
    /// `buf` holds no whole frame yet. [`Incoming::TooBig`],
    /// [`Incoming::ProtocolError`] and [`Incoming::Close`] end the stream:
    /// nothing is read after them (and `buf` is emptied).
    pub fn next(&mut self, buf: &mut BytesMut) -> Option<Incoming> {
        if self.ended {
            buf.clear();
            return None;
        }
        let incoming = self.decode(buf)?;
        if matches!(incoming, Incoming::TooBig | Incoming::ProtocolError(_) | Incoming::Close) {
            self.ended = true;
            buf.clear();
        }
        Some(incoming)
    }

    /// Whether the stream has ended (see [`Reader::next`]).
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn decode(&mut self, buf: &mut BytesMut) -> Option<Incoming> {
        loop {
            // Refuse an oversized frame by its header, before its payload
            // arrives: the codec would first buffer the whole of it.
            if declared_payload_len(buf).is_some_and(|len| len > self.max_bytes as u64) {
                return Some(Incoming::TooBig);
            }
            let frame = match self.codec.decode(buf) {
                Ok(None) => return None,
                Ok(Some(frame)) => frame,
                Err(ProtocolError::Overflow) => return Some(Incoming::TooBig),
                Err(err) => return Some(Incoming::ProtocolError(err.to_string())),
            };
            let incoming = match frame {
                Frame::Text(payload) => text(payload),
                Frame::Binary(_) => Incoming::Binary,
                Frame::Ping(payload) => Incoming::Ping(payload),
                Frame::Pong(payload) => Incoming::Pong(payload),
                Frame::Close(_) => Incoming::Close,
                Frame::Continuation(item) => match self.fragment(item) {
                    Some(incoming) => incoming,
                    None => continue,
                },
            };
            return Some(incoming);
        }
    }

    /// Adds a fragment; returns the message once its last fragment is in
    /// (the codec has checked the order of first, middle and last).
    fn fragment(&mut self, item: Item) -> Option<Incoming> {
        let (is_text, payload, last) = match item {
            Item::FirstText(payload) => (true, payload, false),
            Item::FirstBinary(payload) => (false, payload, false),
            Item::Continue(payload) => (false, payload, false),
            Item::Last(payload) => (false, payload, true),
        };
        let (text, message) = self.partial.get_or_insert_with(|| (is_text, BytesMut::new()));
        if message.len() + payload.len() > self.max_bytes {
            self.partial = None;
            return Some(Incoming::TooBig);
        }
        message.extend_from_slice(&payload);
        if !last {
            return None;
        }
        let is_text = *text;
        let message = std::mem::take(message).freeze();
        self.partial = None;
        Some(if is_text { self::text(message) } else { Incoming::Binary })
    }
}

fn text(payload: Bytes) -> Incoming {
    ByteString::try_from(payload).map_or(Incoming::InvalidText, Incoming::Text)
}

/// The payload length a frame's header announces, once the header's length
/// bytes are in `buf`.
fn declared_payload_len(buf: &[u8]) -> Option<u64> {
    let short = u64::from(*buf.get(1)? & 0x7f);
    match short {
        126 => Some(u64::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?))),
        127 => Some(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)),
        len => Some(len),
    }
}

/// Opcodes of the frames the server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    Text = 0x1,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

/// The header of an unfragmented, unmasked server frame: FIN and the opcode,
/// then the payload length in 1, 3 or 9 bytes. Returns the bytes and how many
/// of them are used.
pub fn server_header(opcode: OpCode, payload_len: usize) -> ([u8; 10], usize) {
    let mut head = [0u8; 10];
    head[0] = 0x80 | opcode as u8;
    let used = match payload_len {
        len @ 0..=125 => {
            head[1] = len as u8;
            2
        }
        len if u16::try_from(len).is_ok() => {
            head[1] = 126;
            head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            4
        }
        len => {
            head[1] = 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        }
    };
    (head, used)
}

/// The payload of a close frame: the code, then the reason cut to the 123
/// bytes a control frame leaves for it (at a character boundary).
pub fn close_payload(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    Bytes::from(payload)
}

#[cfg(test)]
mod tests {
    use test_support::ws::client_frame;

    use super::*;

    fn read_all(reader: &mut Reader, bytes: &[u8]) -> Vec<String> {
        let mut buf = BytesMut::from(bytes);
        std::iter::from_fn(|| reader.next(&mut buf)).map(|incoming| format!("{incoming:?}")).collect()
    }

    #[test]
    fn frames_split_anywhere_come_out_whole_and_in_order() {
        let mut wire = client_frame(true, 0x1, br#"{"type":"ping"}"#);
        wire.extend(client_frame(true, 0x9, b"7"));
        wire.extend(client_frame(true, 0x1, &[b'x'; 300]));
        for cut in 0..wire.len() {
            let mut reader = Reader::new(1024);
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got: Vec<String> = std::iter::from_fn(|| reader.next(&mut buf)).map(|m| format!("{m:?}")).collect();
            buf.extend_from_slice(&wire[cut..]);
            got.extend(std::iter::from_fn(|| reader.next(&mut buf)).map(|m| format!("{m:?}")));
            assert_eq!(got.len(), 3, "cut at {cut}: {got:?}");
            assert!(got[0].contains("ping") && got[1].starts_with("Ping") && got[2].contains("xxxx"), "{got:?}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn fragments_are_joined_and_bounded_as_one_message() {
        let mut wire = client_frame(false, 0x1, b"hel");
        wire.extend(client_frame(true, 0x9, b"")); // a ping may come between fragments
        wire.extend(client_frame(false, 0x0, b"lo "));
        wire.extend(client_frame(true, 0x0, "wörld".as_bytes()));
        let got = read_all(&mut Reader::new(64), &wire);
        assert_eq!(got, vec![r#"Ping(b"")"#.to_owned(), r#"Text("hello wörld")"#.to_owned()]);

        let mut wire = client_frame(false, 0x1, &[b'a'; 40]);
        wire.extend(client_frame(true, 0x0, &[b'a'; 40]));
        assert_eq!(read_all(&mut Reader::new(64), &wire), vec!["TooBig".to_owned()], "80 bytes in all, over 64");
    }

    #[test]
    fn an_oversized_frame_is_refused_by_its_header_alone() {
        let frame = client_frame(true, 0x1, &vec![b'a'; 70_000]);
        // Only the header and a little of the payload have arrived.
        assert_eq!(read_all(&mut Reader::new(65_536), &frame[..20]), vec!["TooBig".to_owned()]);
        assert_eq!(read_all(&mut Reader::new(65_536), &frame[..1]), Vec::<String>::new(), "no length yet");
        let exact = client_frame(true, 0x1, &vec![b'a'; 65_536]);
        assert_eq!(read_all(&mut Reader::new(65_536), &exact).len(), 1, "exactly at the limit is fine");
        assert!(!read_all(&mut Reader::new(65_536), &exact)[0].starts_with("TooBig"));
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(read_all(&mut Reader::new(64), &client_frame(true, 0x1, &[0xff, 0xfe])), vec!["InvalidText"]);
        assert_eq!(read_all(&mut Reader::new(64), &client_frame(true, 0x2, b"\x00")), vec!["Binary"]);
        assert_eq!(read_all(&mut Reader::new(64), &client_frame(true, 0x8, &1000u16.to_be_bytes())), vec!["Close"]);
        let unmasked = [0x81, 0x01, b'a'];
        assert!(read_all(&mut Reader::new(64), &unmasked)[0].starts_with("ProtocolError"));
        let continuation_first = client_frame(true, 0x0, b"a");
        assert!(read_all(&mut Reader::new(64), &continuation_first)[0].starts_with("ProtocolError"));
        let big_ping = client_frame(true, 0x9, &[0; 126]);
        assert!(read_all(&mut Reader::new(1024), &big_ping)[0].starts_with("ProtocolError"));
    }

    #[test]
    fn server_headers_use_the_shortest_length() {
        assert_eq!(server_header(OpCode::Text, 5), ([0x81, 5, 0, 0, 0, 0, 0, 0, 0, 0], 2));
        assert_eq!(server_header(OpCode::Ping, 0).0[..2], [0x89, 0]);
        assert_eq!(server_header(OpCode::Text, 126), ([0x81, 126, 0, 126, 0, 0, 0, 0, 0, 0], 4));
        assert_eq!(server_header(OpCode::Text, 65_535).0[..4], [0x81, 126, 0xff, 0xff]);
        assert_eq!(server_header(OpCode::Text, 65_536), ([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0], 10));
        assert_eq!(close_payload(4008, "slow consumer")[..], *b"\x0f\xa8slow consumer");
        let long = "é".repeat(100);
        let payload = close_payload(1000, &long);
        assert_eq!(payload.len(), 2 + 122, "cut at a character boundary");
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
    }
}
