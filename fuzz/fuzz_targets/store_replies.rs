//! What Redis answers the history store's scripts, decoded by
//! `history_store::redis::replies`. The input is JSON standing for a RESP
//! reply: null, integers, floats, booleans, arrays, maps (as RESP2's
//! flat arrays), strings, strings starting with `b:` for bulk bytes and `x:`
//! for bytes in hex (invalid UTF-8). Every decoder gets every
//! reply; stored entries also go through `scrub_entry`.
//!
//! Holds: no panic; every answer is a value or `BadData`.
#![no_main]

use bytes::Bytes;
use chat_shared::protocol::scrub_entry;
use fred::types::Value as Reply;
use history_store::redis::replies;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn reply(value: &Value) -> Reply {
    match value {
        Value::Null => Reply::Null,
        Value::Bool(b) => Reply::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Reply::Integer(i),
            None => Reply::Double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => match (s.strip_prefix("b:"), s.strip_prefix("x:")) {
            (Some(bytes), _) => Reply::Bytes(Bytes::from(bytes.as_bytes().to_vec())),
            (_, Some(hex)) => Reply::Bytes(Bytes::from(
                hex.as_bytes()
                    .chunks(2)
                    .filter_map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
                    .collect::<Vec<_>>(),
            )),
            _ => Reply::from(s.as_str()),
        },
        Value::Array(items) => Reply::Array(items.iter().map(reply).collect()),
        // A map as RESP2 sends one: key, value, key, value…
        Value::Object(map) => Reply::Array(map.iter().flat_map(|(k, v)| [Reply::from(k.as_str()), reply(v)]).collect()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let r = reply(&value);
    let _ = replies::append(r.clone());
    let _ = replies::page(r.clone());
    let _ = replies::dm_append(r.clone());
    let _ = replies::set_cursor(r.clone(), "e".into());
    let _ = replies::cursors(r.clone());
    let _ = replies::summary(r);
    // The entries a page or summary would hold, as the delete's scrub sees them.
    let mut strings = Vec::new();
    collect_strings(&value, &mut strings);
    for s in strings {
        if let Some(scrubbed) = scrub_entry(s) {
            if serde_json::from_str::<Value>(s).is_ok() {
                serde_json::from_str::<Value>(&scrubbed).expect("scrubbing valid JSON keeps it valid");
            }
        }
    }
});

fn collect_strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}
