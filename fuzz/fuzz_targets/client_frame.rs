//! Every text frame a client can send: `parse_client_frame` and the checks
//! its types make (room names, user ids, emoji, statuses, ids…), then what
//! the gateway builds from a frame that passes: the stored event's JSON and
//! its scrubbed form after a `delete`.
//!
//! Holds: no panic; an error's message stays short (it never echoes more
//! than the frame); a stored event is valid JSON that reads back with the
//! same text, and scrubbing it leaves the same JSON without the text,
//! marked deleted.
#![no_main]

use chat_shared::protocol::{
    complete_message, dm_prefix, event_prefix, parse_client_frame, scrub_entry, ClientFrame, RoomEventKind, UserRef,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_client_frame(text) {
        Err(err) => {
            assert!(err.message.len() <= text.len() + 300, "an error echoes more than the frame: {}", err.message);
            assert!(!err.message.is_empty());
        }
        Ok((_, frame)) => stored_forms(frame),
    }
});

fn author() -> UserRef {
    serde_json::from_value(json!({"id": "u1", "name": "Ann"})).expect("a valid author")
}

fn stored_forms(frame: ClientFrame) {
    let from = author();
    let (json, text) = match frame {
        ClientFrame::Send { room, text, client_id, reply_to, .. } => {
            let kind = RoomEventKind::Message { text: text.clone(), reply_to, attachments: Vec::new() };
            (complete_message(&event_prefix(&room, &from, &kind, client_id.as_ref()), 7, 1), text)
        }
        ClientFrame::Edit { room, target, text, client_id } => {
            let kind = RoomEventKind::Edit { target, text: text.clone() };
            (complete_message(&event_prefix(&room, &from, &kind, client_id.as_ref()), 8, 1), text)
        }
        ClientFrame::React { room, target, emoji, op, client_id } => {
            let kind = RoomEventKind::Reaction { target, emoji, op };
            let json = complete_message(&event_prefix(&room, &from, &kind, client_id.as_ref()), 9, 1);
            serde_json::from_str::<Value>(&json).expect("a stored reaction is JSON");
            return;
        }
        ClientFrame::Dm { to, text, client_id, .. } => {
            (complete_message(&dm_prefix(&from, &to, &text, client_id.as_ref()), 3, 1), text)
        }
        _ => return,
    };
    let stored: Value = serde_json::from_str(&json).expect("a stored event is JSON");
    assert_eq!(stored["text"].as_str(), Some(text.as_str()), "the stored text reads back");
    if let Some(scrubbed) = scrub_entry(&json) {
        // As a delete leaves it: the same event without its text, marked deleted.
        let mut scrubbed: Value = serde_json::from_str(&scrubbed).expect("a scrubbed event is JSON");
        assert_eq!(scrubbed.as_object_mut().and_then(|o| o.remove("deleted")), Some(json!(true)));
        let mut expected = stored.clone();
        expected.as_object_mut().unwrap().remove("text");
        assert_eq!(scrubbed, expected, "scrubbing takes the text out and nothing else");
    }
}
