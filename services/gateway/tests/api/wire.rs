//! The WebSocket on the wire, written byte by byte over a raw TCP socket:
//! what the gateway's own frame handling must get right (the handshake's
//! leftovers, frames split anywhere, limits enforced from a frame's header,
//! text that is not UTF-8, upgrades on other paths).

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use test_support::ws::client_frame;

use crate::helpers::{spawn_app, TestApp};

const HANDSHAKE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn handshake(method: &str, path: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {HANDSHAKE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A raw connection: reads the server's frames (unmasked, unfragmented).
struct Raw {
    io: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn open(app: &TestApp, first_bytes: &[u8]) -> Raw {
        let mut io = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        io.write_all(first_bytes).await.unwrap();
        Raw { io, buf: Vec::new() }
    }

    /// A connection past its `101` and `welcome`.
    async fn welcomed(app: &TestApp, name: &str) -> Raw {
        let mut raw = Raw::open(app, handshake("GET", &format!("/ws?name={name}")).as_bytes()).await;
        assert!(raw.http_response().await.starts_with("HTTP/1.1 101"));
        assert_eq!(raw.json().await["type"], "welcome");
        raw
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(5), self.io.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => panic!("nothing from the server in 5 s; have {:?}", String::from_utf8_lossy(&self.buf)),
        }
    }

    /// The HTTP response head (and body, for a refusal).
    async fn http_response(&mut self) -> String {
        while !String::from_utf8_lossy(&self.buf).contains("\r\n\r\n") {
            assert!(self.fill().await, "closed before a response");
        }
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        let end = text.find("\r\n\r\n").unwrap() + 4;
        let length = text
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0usize);
        while self.buf.len() < end + length {
            assert!(self.fill().await, "closed before the body");
        }
        let response = String::from_utf8_lossy(&self.buf[..end + length]).into_owned();
        self.buf.drain(..end + length);
        response
    }

    /// The next server frame: (opcode, payload); `None` once closed.
    async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                let (len, at) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4),
                    127 if self.buf.len() >= 10 => {
                        (u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    len => (len as usize, 2),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let opcode = self.buf[0] & 0x0f;
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return Some((opcode, payload));
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next text frame as JSON, skipping pings.
    async fn json(&mut self) -> Value {
        loop {
            let (opcode, payload) = self.frame().await.expect("a frame");
            if opcode == 0x1 {
                return serde_json::from_slice(&payload).unwrap();
            }
        }
    }

    /// The close code of the server's close frame, skipping other frames.
    async fn close_code(&mut self) -> Option<u16> {
        loop {
            let (opcode, payload) = self.frame().await?;
            if opcode == 0x8 {
                return Some(u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    }
}

#[tokio::test]
async fn a_frame_sent_with_the_handshake_and_frames_split_byte_by_byte_are_read() {
    let app = spawn_app(|_| {});
    // The first frame in the same write as the handshake: it arrives in the
    // HTTP parser's buffer and must not be lost with it.
    let mut first = handshake("GET", "/ws?name=raw").into_bytes();
    first.extend(client_frame(true, 0x1, br#"{"type":"ping","id":"p1"}"#));
    let mut raw = Raw::open(&app, &first).await;
    assert!(raw.http_response().await.starts_with("HTTP/1.1 101"));
    assert_eq!(raw.json().await["type"], "welcome");
    let pong = raw.json().await;
    assert_eq!((&pong["type"], &pong["re"]), (&"pong".into(), &"p1".into()), "{pong}");
    // A frame written one byte at a time.
    for byte in client_frame(true, 0x1, br#"{"type":"ping","id":"p2"}"#) {
        raw.io.write_all(&[byte]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(raw.json().await["re"], "p2");
    // A message in three fragments (a zero mask leaves the payload as is).
    let parts: [(u8, &[u8]); 3] = [(0x01, br#"{"t"#), (0x00, br#"ype":"ping","#), (0x80, br#""id":"p3"}"#)];
    for (first_byte, part) in parts {
        raw.io.write_all(&[first_byte, 0x80 | part.len() as u8, 0, 0, 0, 0]).await.unwrap();
        raw.io.write_all(part).await.unwrap();
    }
    assert_eq!(raw.json().await["re"], "p3");
}

#[tokio::test]
async fn an_oversized_frame_is_refused_from_its_header_without_its_payload() {
    let app = spawn_app(|_| {});
    let mut raw = Raw::welcomed(&app, "big").await;
    // Announce 64 MiB and send only the header and mask.
    let mut head = vec![0x81, 0x80 | 127];
    head.extend_from_slice(&(64u64 << 20).to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    raw.io.write_all(&head).await.unwrap();
    assert_eq!(raw.close_code().await, Some(1009));
}

#[tokio::test]
async fn text_that_is_not_utf8_gets_bad_request_and_the_connection_goes_on() {
    let app = spawn_app(|_| {});
    let mut raw = Raw::welcomed(&app, "bytes").await;
    raw.io.write_all(&client_frame(true, 0x1, b"{\"type\":\"ping\",\"id\":\"\xff\xfe\"}")).await.unwrap();
    let error = raw.json().await;
    assert_eq!((&error["type"], &error["code"]), (&"error".into(), &"bad_request".into()), "{error}");
    assert!(error["message"].as_str().unwrap().contains("UTF-8"), "{error}");
    raw.io.write_all(&client_frame(true, 0x1, br#"{"type":"ping","id":"ok"}"#)).await.unwrap();
    assert_eq!(raw.json().await["re"], "ok");
}

#[tokio::test]
async fn upgrades_elsewhere_than_get_ws_get_the_json_errors_of_every_route() {
    let app = spawn_app(|_| {});
    for (method, path, status, code) in
        [("GET", "/elsewhere", "404", "not_found"), ("POST", "/ws?name=x", "405", "method_not_allowed")]
    {
        let mut raw = Raw::open(&app, handshake(method, path).as_bytes()).await;
        let response = raw.http_response().await;
        assert!(response.starts_with(&format!("HTTP/1.1 {status}")), "{response}");
        let body: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["error"]["code"], code, "{response}");
        assert!(!raw.fill().await, "the connection is closed after a refusal");
    }
}
