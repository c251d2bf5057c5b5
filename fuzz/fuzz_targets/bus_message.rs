//! What the subscriber receives from Redis pub/sub: a channel name and a
//! payload (`KIND ␟ SEQ ␟ SKIP_USER ␟ SKIP_SESSION [␟ ONLY_SESSION] \n BODY`),
//! decoded by the gateway's `subscriber::decode`. The input is the channel,
//! a NUL byte, then the payload.
//!
//! Holds: no panic; whatever decodes encodes back to a payload that decodes
//! to the same message.
#![no_main]

use gateway::engine::redis::subscriber::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (channel, payload) = text.split_once('\0').unwrap_or(("chat:{r:lobby}:ch", text));
    if let Some((topic, message)) = decode(channel, payload) {
        let again = encode(&message);
        let (topic2, message2) = decode(channel, &again).expect("an encoded message decodes");
        assert_eq!(topic, topic2);
        assert_eq!(format!("{message:?}"), format!("{message2:?}"));
    }
});
