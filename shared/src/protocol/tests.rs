use std::sync::Arc;

use serde_json::value::RawValue;

use super::*;

fn parse(text: &str) -> Result<(Option<RequestId>, ClientFrame), FrameError> {
    parse_client_frame(text)
}

#[test]
fn room_names() {
    for ok in ["a", "general", "A.b_c:d-9", &"x".repeat(64)] {
        assert!(RoomName::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["", "has space", "é", "a/b", &"x".repeat(65), "a\n"] {
        assert!(RoomName::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn user_ids_and_names() {
    assert!(UserId::parse("alice@example.com").is_ok());
    assert!(UserId::parse("Zoë 🚀").is_ok());
    assert!(UserId::parse(&"é".repeat(128)).is_ok());
    assert!(UserId::parse(&"é".repeat(129)).is_err());
    assert!(UserId::parse("").is_err());
    assert!(UserId::parse("a\u{0007}b").is_err());
    assert!(DisplayName::parse(&"n".repeat(64)).is_ok());
    assert!(DisplayName::parse(&"n".repeat(65)).is_err());
    assert!(DisplayName::parse("tab\there").is_err());
    let long = UserId::parse(&"u".repeat(100)).unwrap();
    assert_eq!(DisplayName::from_user_id(&long).as_str().len(), 64);
}

#[test]
fn parses_each_type() {
    let (re, f) = parse(r#"{"type":"join","id":1,"room":"r1","since":5,"epoch":"e","extra":true}"#).unwrap();
    assert_eq!(re, Some(RequestId::Num(1.into())));
    assert!(matches!(f, ClientFrame::Join { since: Some(5), .. }));
    let (re, f) = parse(r#"{"type":"send","id":"a","room":"r1","text":"hi","client_id":"c1"}"#).unwrap();
    assert_eq!(re, Some(RequestId::Str("a".into())));
    assert!(matches!(f, ClientFrame::Send { client_id: Some(_), .. }));
    let (_, f) = parse(r#"{"type":"typing","room":"r1"}"#).unwrap();
    assert!(matches!(f, ClientFrame::Typing { state: TypingState::Start, .. }));
    let (_, f) = parse(r#"{"type":"typing","room":"r1","state":"stop"}"#).unwrap();
    assert!(matches!(f, ClientFrame::Typing { state: TypingState::Stop, .. }));
    assert!(matches!(parse(r#"{"type":"ping"}"#).unwrap().1, ClientFrame::Ping));
    assert!(matches!(parse(r#"{"type":"leave","room":"x"}"#).unwrap().1, ClientFrame::Leave { .. }));
    assert!(matches!(parse(r#"{"type":"members","room":"x"}"#).unwrap().1, ClientFrame::Members { .. }));
    let (_, f) = parse(r#"{"type":"history","room":"x","before":10,"limit":5}"#).unwrap();
    let ClientFrame::History(h) = f else { panic!("{f:?}") };
    assert_eq!(
        (h.of, h.before, h.after, h.limit),
        (Thread::Room(RoomName::parse("x").unwrap()), Some(10), None, Some(5))
    );
    let (_, f) = parse(r#"{"type":"history","dm":"bob","after":3}"#).unwrap();
    let ClientFrame::History(h) = f else { panic!("{f:?}") };
    assert_eq!((h.of, h.after), (Thread::Dm(UserId::parse("bob").unwrap()), Some(3)));
    assert!(matches!(parse(r#"{"type":"dm","to":"bob","text":"yo"}"#).unwrap().1, ClientFrame::Dm { .. }));
}

#[test]
fn classifies_errors() {
    let e = parse("not json").unwrap_err();
    assert_eq!((e.code, e.re), (ErrorCode::BadRequest, None));
    let e = parse("[1,2]").unwrap_err();
    assert_eq!(e.code, ErrorCode::BadRequest);
    assert!(e.message.contains("object"), "{}", e.message);
    let e = parse(r#"{"id":3}"#).unwrap_err();
    assert_eq!((e.code, e.re), (ErrorCode::BadRequest, Some(RequestId::Num(3.into()))));
    let e = parse(r#"{"type":"fly","id":"x"}"#).unwrap_err();
    assert_eq!((e.code, e.re), (ErrorCode::UnknownType, Some(RequestId::Str("x".into()))));
    let e = parse(r#"{"type":7,"id":"t"}"#).unwrap_err();
    assert_eq!((e.code, e.re), (ErrorCode::BadRequest, Some(RequestId::Str("t".into()))));
    let e = parse(r#"{"type":"ping","id":{"x":1}}"#).unwrap_err();
    assert_eq!((e.code, e.re), (ErrorCode::BadRequest, None));
    let e = parse(r#"{"type":"join","id":9,"room":"bad room"}"#).unwrap_err();
    assert_eq!((e.code, e.re.clone()), (ErrorCode::BadRequest, Some(RequestId::Num(9.into()))));
    assert!(e.message.contains("room name"), "{}", e.message);
    for bad in [
        r#"{"type":"join","room":"r","limit":-1}"#,
        r#"{"type":"join","room":"r","since":1.5}"#,
        r#"{"type":"history","room":"r","before":"3"}"#,
        r#"{"type":"send","room":"r","text":5}"#,
        r#"{"type":"typing","room":"r","state":"maybe"}"#,
        r#"{"type":"dm","to":"","text":"x"}"#,
        r#"{"type":"send","room":"r","text":"x","client_id":""}"#,
        r#"{"type":"history"}"#,
        r#"{"type":"history","room":"r","dm":"bob"}"#,
        r#"{"type":"history","room":"r","before":5,"after":2}"#,
        r#"{"type":"history","dm":""}"#,
        r#"{"type":"history","dm":"bob","after":-1}"#,
    ] {
        assert_eq!(parse(bad).unwrap_err().code, ErrorCode::BadRequest, "{bad}");
    }
    let twice = parse(r#"{"type":"ping","type":"send","id":7}"#).unwrap_err();
    assert_eq!(
        (twice.code, twice.re, twice.message.as_str()),
        (ErrorCode::BadRequest, Some(RequestId::Num(7.into())), "duplicate field `type`")
    );
    // A `send` without text parses (attachments may stand in for it); the
    // gateway refuses it without attachments, as empty text.
    assert!(
        matches!(parse(r#"{"type":"send","room":"r"}"#).unwrap().1, ClientFrame::Send { ref text, .. } if text.is_empty())
    );
    let e = parse(r#"{"type":"history","id":4,"room":"r","dm":"bob"}"#).unwrap_err();
    assert_eq!(e.re, Some(RequestId::Num(4.into())));
    assert!(e.message.contains("exactly one of `room` and `dm`"), "{}", e.message);
    assert!(parse(r#"{"type":"history","dm":"b","before":2,"after":1}"#).unwrap_err().message.contains("not both"));
}

#[test]
fn prefixes_complete_to_the_serialised_frames() {
    let from = UserRef { id: UserId::parse("u\"1").unwrap(), name: DisplayName::parse("Ål").unwrap() };
    let room = RoomName::parse("r").unwrap();
    for client_id in [None, Some(ClientId::parse("c1").unwrap())] {
        let full = ServerFrame::Message(RoomMessage {
            room: room.clone(),
            from: from.clone(),
            text: Some("hi \n there".into()),
            attachments: Vec::new(),
            reply_to: None,
            client_id: client_id.clone(),
            deleted: false,
            seq: 12,
            ts: 1_795_358_155_872,
        })
        .to_json();
        let prefix = message_prefix(&room, &from, "hi \n there", client_id.as_ref());
        assert_eq!(complete_message(&prefix, 12, 1_795_358_155_872), full.to_string());
        let to = UserId::parse("bob").unwrap();
        let dm = ServerFrame::Dm(DirectMessage {
            from: from.clone(),
            to: to.clone(),
            text: "x".into(),
            client_id: client_id.clone(),
            seq: 3,
            ts: 9,
        })
        .to_json();
        assert_eq!(complete_message(&dm_prefix(&from, &to, "x", client_id.as_ref()), 3, 9), dm.to_string());
    }
}

#[test]
fn server_frames_serialise_to_the_protocol_shape() {
    let user = UserRef { id: UserId::parse("u1").unwrap(), name: DisplayName::parse("Alice").unwrap() };
    let msg = RoomMessage {
        room: RoomName::parse("r").unwrap(),
        from: user.clone(),
        text: Some("hi".into()),
        attachments: Vec::new(),
        reply_to: None,
        client_id: None,
        deleted: false,
        seq: 3,
        ts: 10,
    };
    let json = ServerFrame::Message(msg).to_json();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["from"]["name"], "Alice");
    assert!(v.get("client_id").is_none());
    let stored = StoredMessage { seq: 3, json: Arc::from(RawValue::from_string(json.to_string()).unwrap()) };
    let joined = ServerFrame::Joined {
        re: Some(RequestId::Num(1.into())),
        room: RoomName::parse("r").unwrap(),
        seq: 3,
        epoch: "e1".into(),
        members: vec![user.into()],
        history: vec![stored],
        recovered: false,
        read_seq: 2,
        unread: 1,
    };
    let v: serde_json::Value = serde_json::from_str(&joined.to_json()).unwrap();
    assert_eq!(v["re"], 1);
    assert_eq!(v["history"][0]["type"], "message");
    assert_eq!(v["history"][0]["seq"], 3);
    assert_eq!((&v["read_seq"], &v["unread"], &v["members"][0]["id"]), (&2.into(), &1.into(), &"u1".into()));
    assert!(v["members"][0].get("status").is_none(), "no status set: none shown");
    let err = ServerFrame::Error {
        re: None,
        code: ErrorCode::RateLimited,
        message: "slow down".into(),
        retry_after_ms: Some(50),
    };
    let v: serde_json::Value = serde_json::from_str(&err.to_json()).unwrap();
    assert_eq!(v["code"], "rate_limited");
    assert_eq!(v["retry_after_ms"], 50);
    assert!(v.get("re").is_none());
}

#[test]
fn room_event_requests_parse_and_check_their_fields() {
    let (_, edit) = parse(r#"{"type":"edit","room":"r","target":3,"text":"x","client_id":"c"}"#).unwrap();
    assert!(matches!(edit, ClientFrame::Edit { target: 3, .. }));
    let (_, react) = parse(r#"{"type":"react","room":"r","target":3,"emoji":"👍"}"#).unwrap();
    assert!(matches!(react, ClientFrame::React { op: ReactionOp::Add, .. }), "add is the default op");
    for bad in [
        r#"{"type":"react","room":"r","target":3,"emoji":"a b"}"#,
        r#"{"type":"react","room":"r","target":3,"emoji":""}"#,
        r#"{"type":"react","room":"r","target":3,"emoji":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        r#"{"type":"react","room":"r","target":3,"emoji":"x","op":"toggle"}"#,
        r#"{"type":"delete","room":"r","target":-1}"#,
        r#"{"type":"edit","room":"r","text":"x"}"#,
        r#"{"type":"read","room":"r","dm":"u","seq":1}"#,
        r#"{"type":"read","seq":1}"#,
        r#"{"type":"read","room":"r","seq":1.5}"#,
        r#"{"type":"status","state":"gone"}"#,
        r#"{"type":"status","state":"away","text":"a\nb"}"#,
    ] {
        let err = parse(bad).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest, "{bad}");
    }
    let (_, read) = parse(r#"{"type":"read","dm":"bob","seq":4}"#).unwrap();
    assert_eq!(read, ClientFrame::Read(ReadRequest { of: Thread::Dm(UserId::parse("bob").unwrap()), seq: 4 }));
    assert!(matches!(parse(r#"{"type":"inbox"}"#).unwrap().1, ClientFrame::Inbox));
}

#[test]
fn event_prefixes_and_scrubbing() {
    let from = UserRef { id: UserId::parse("a").unwrap(), name: DisplayName::parse("A").unwrap() };
    let room = RoomName::parse("r").unwrap();
    let reply =
        RoomEventKind::Message { text: "say \"hi\", ,\"seq\":9".into(), reply_to: Some(2), attachments: Vec::new() };
    let json = complete_message(&event_prefix(&room, &from, &reply, Some(&ClientId::parse("c").unwrap())), 5, 7);
    let scrubbed = scrub_entry(&json).unwrap();
    assert_eq!(
        scrubbed,
        r#"{"type":"message","room":"r","from":{"id":"a","name":"A"},"reply_to":2,"client_id":"c","deleted":true,"seq":5,"ts":7}"#
    );
    let typed: RoomMessage = serde_json::from_str(&scrubbed).unwrap();
    assert_eq!(serde_json::to_string(&ServerFrame::Message(typed)).unwrap(), scrubbed, "the typed frame agrees");
    let edit = RoomEventKind::Edit { target: 5, text: "new".into() };
    let json = complete_message(&event_prefix(&room, &from, &edit, None), 6, 8);
    assert_eq!(
        json,
        r#"{"type":"edit","room":"r","target":5,"from":{"id":"a","name":"A"},"text":"new","seq":6,"ts":8}"#
    );
    assert_eq!(
        scrub_entry(&json).unwrap(),
        r#"{"type":"edit","room":"r","target":5,"from":{"id":"a","name":"A"},"deleted":true,"seq":6,"ts":8}"#
    );
    // Attachments go with the text, whatever their names hold.
    let file = Attachment {
        id: "f1".into(),
        name: r#"a "]}[{ name.png"#.into(),
        size: 3,
        content_type: "image/png".into(),
        url: "/v1/files/r/f1".into(),
    };
    let with_files =
        RoomEventKind::Message { text: String::new(), reply_to: None, attachments: vec![file.clone(), file] };
    let json = complete_message(&event_prefix(&room, &from, &with_files, None), 9, 11);
    assert!(json.contains(r#""text":"","attachments":[{"id":"f1""#), "{json}");
    assert_eq!(
        scrub_entry(&json).unwrap(),
        r#"{"type":"message","room":"r","from":{"id":"a","name":"A"},"deleted":true,"seq":9,"ts":11}"#
    );
    let delete = complete_message(&event_prefix(&room, &from, &RoomEventKind::Delete { target: 5 }, None), 7, 9);
    assert_eq!(scrub_entry(&delete), None, "only messages and edits have text");
    assert_eq!(scrub_entry(&scrubbed), None, "scrubbing twice finds nothing");
    let reaction = RoomEventKind::Reaction { target: 5, emoji: Emoji::parse("👍").unwrap(), op: ReactionOp::Remove };
    assert_eq!(
        complete_message(&event_prefix(&room, &from, &reaction, None), 8, 10),
        r#"{"type":"reaction","room":"r","target":5,"from":{"id":"a","name":"A"},"emoji":"👍","op":"remove","seq":8,"ts":10}"#
    );
}
