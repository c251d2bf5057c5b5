//! Room events of protocol 1.1: edits, deletes, reactions and replies, as
//! every store must check and keep them (`history.size` is 5 here).

use serde_json::Value;

use chat_shared::protocol::{scrub_entry, ClientId, Emoji, ReactionOp, RoomEventKind};
use history_store::{Outcome, RoomDraft, Window};

use crate::cases::{draft, parse, seqs, someone, stored};
use crate::{room, Fixture, Published};

fn event(room_name: &str, from: &str, event: RoomEventKind, client_id: Option<&str>) -> RoomDraft {
    let client_id = client_id.map(|c| ClientId::parse(c).expect("a valid client id"));
    RoomDraft::new(room(room_name), someone(from), event, client_id)
}

fn edit(target: u64, text: &str) -> RoomEventKind {
    RoomEventKind::Edit { target, text: text.to_owned() }
}

fn react(target: u64, emoji: &str, op: ReactionOp) -> RoomEventKind {
    RoomEventKind::Reaction { target, emoji: Emoji::parse(emoji).expect("an emoji"), op }
}

async fn outcome(f: &dyn Fixture, draft: RoomDraft) -> Outcome {
    f.store().append_room(draft).await.expect("append")
}

fn kind_of(published: &Published) -> &str {
    match published {
        Published::Room { kind, .. } => kind,
        Published::Dm { .. } => "dm",
    }
}

pub async fn edits_and_deletes(f: &mut dyn Fixture) {
    let name = "c-edit";
    let r = room(name);
    f.listen_room(&r).await;
    stored(f.store(), draft(name, "alice", "first \"quoted\" \\ text", Some("k1"))).await;
    stored(f.store(), draft(name, "bob", "second", None)).await;
    f.published(2).await;
    let original = f.store().read_room(&r, Window::latest(10)).await.expect("read").messages[0].json.get().to_owned();

    assert_eq!(outcome(&*f, event(name, "bob", edit(1, "mine now"), None)).await, Outcome::NotAuthor);
    assert_eq!(outcome(&*f, event(name, "bob", RoomEventKind::Delete { target: 1 }, None)).await, Outcome::NotAuthor);
    f.nothing_published().await;

    let edited = stored(f.store(), event(name, "alice", edit(1, "first, edited"), None)).await;
    assert_eq!(edited.seq, 3, "an edit takes the room's next seq");
    let published = f.published(1).await;
    assert_eq!(kind_of(&published[0]), "edit");
    let deleted = stored(f.store(), event(name, "alice", RoomEventKind::Delete { target: 1 }, None)).await;
    assert_eq!(deleted.seq, 4);
    assert_eq!(kind_of(&f.published(1).await[0]), "delete");

    let page = f.store().read_room(&r, Window::latest(10)).await.expect("read");
    assert_eq!(seqs(&page.messages), [1, 2, 3, 4]);
    let frames: Vec<Value> = page.messages.iter().map(|m| parse(m.json.get())).collect();
    assert_eq!(
        page.messages[0].json.get(),
        scrub_entry(&original).expect("scrubbable"),
        "the message keeps all but its text, byte for byte the same in every store"
    );
    assert_eq!((&frames[0]["deleted"], frames[0].get("text")), (&Value::Bool(true), None));
    assert_eq!(
        (&frames[0]["from"]["id"], &frames[0]["seq"], &frames[0]["client_id"]),
        (&"alice".into(), &1.into(), &"k1".into())
    );
    assert_eq!(frames[1]["text"], "second", "other messages are untouched");
    assert_eq!(
        (&frames[2]["type"], &frames[2]["target"], &frames[2]["deleted"]),
        (&"edit".into(), &1.into(), &true.into())
    );
    assert_eq!(frames[2].get("text"), None, "the edit loses its text too");
    assert_eq!(
        (&frames[3]["type"], &frames[3]["target"], &frames[3]["from"]["id"]),
        (&"delete".into(), &1.into(), &"alice".into())
    );

    for refused in [edit(1, "again"), RoomEventKind::Delete { target: 1 }, react(1, "👍", ReactionOp::Add)] {
        assert_eq!(
            outcome(&*f, event(name, "alice", refused, None)).await,
            Outcome::NotFound,
            "a deleted message takes nothing"
        );
    }
    let reply = RoomEventKind::Message { text: "re".into(), reply_to: Some(1), attachments: Vec::new() };
    assert_eq!(outcome(&*f, event(name, "bob", reply, None)).await, Outcome::NotFound);
    f.nothing_published().await;

    // A moderator deletes anyone's message; its author stays on it.
    let mut moderated = event(name, "server", RoomEventKind::Delete { target: 2 }, None);
    moderated.moderator = true;
    assert_eq!(stored(f.store(), moderated).await.seq, 5);
    assert_eq!(kind_of(&f.published(1).await[0]), "delete");
    let page = f.store().read_room(&r, Window::latest(10)).await.expect("read");
    let second = parse(page.messages[1].json.get());
    assert_eq!((&second["deleted"], second.get("text"), &second["from"]["id"]), (&true.into(), None, &"bob".into()));
    assert_eq!(parse(page.messages[4].json.get())["from"]["id"], "server");
}

pub async fn targets_must_be_live(f: &mut dyn Fixture) {
    let name = "c-target";
    f.listen_room(&room(name)).await;
    stored(f.store(), draft(name, "alice", "one", None)).await;
    stored(f.store(), event(name, "alice", edit(1, "one!"), None)).await;
    f.published(2).await;
    for (target, why) in [(0, "seq 0"), (3, "above the latest"), (99, "far above"), (2, "an edit, not a message")] {
        assert_eq!(outcome(&*f, event(name, "alice", edit(target, "x"), None)).await, Outcome::NotFound, "{why}");
        assert_eq!(
            outcome(&*f, event(name, "bob", react(target, "👍", ReactionOp::Add), None)).await,
            Outcome::NotFound,
            "{why}"
        );
    }
    let reply = stored(
        f.store(),
        event(
            name,
            "bob",
            RoomEventKind::Message { text: "yes".into(), reply_to: Some(1), attachments: Vec::new() },
            None,
        ),
    )
    .await;
    let published = f.published(1).await;
    let Published::Room { json, .. } = &published[0] else { panic!("{published:?}") };
    assert_eq!((parse(json)["reply_to"].clone(), parse(json)["seq"].clone()), (1.into(), reply.seq.into()));
    // history.size is 5: three more events push message 1 out.
    for i in 0..3 {
        stored(f.store(), draft(name, "alice", &format!("m{i}"), None)).await;
    }
    f.published(3).await;
    let gone = RoomEventKind::Message { text: "late".into(), reply_to: Some(1), attachments: Vec::new() };
    assert_eq!(outcome(&*f, event(name, "bob", gone, None)).await, Outcome::NotFound, "trimmed from the history");
    assert_eq!(outcome(&*f, event(name, "alice", edit(1, "x"), None)).await, Outcome::NotFound);
    f.nothing_published().await;
}

pub async fn reactions_are_held_once(f: &mut dyn Fixture) {
    let name = "c-react";
    f.listen_room(&room(name)).await;
    stored(f.store(), draft(name, "alice", "react to me", None)).await;
    f.published(1).await;
    let add = |who: &str, emoji: &str| event(name, who, react(1, emoji, ReactionOp::Add), None);
    let remove = |who: &str, emoji: &str| event(name, who, react(1, emoji, ReactionOp::Remove), None);
    assert_eq!(stored(f.store(), add("bob", "👍")).await.seq, 2);
    assert!(matches!(outcome(&*f, add("bob", "👍")).await, Outcome::Unchanged { ts } if ts > 1_600_000_000_000));
    assert!(matches!(outcome(&*f, remove("bob", "🎉")).await, Outcome::Unchanged { .. }), "not held");
    assert!(matches!(outcome(&*f, remove("alice", "👍")).await, Outcome::Unchanged { .. }), "held by bob, not alice");
    assert_eq!(stored(f.store(), add("alice", "👍")).await.seq, 3);
    assert_eq!(stored(f.store(), remove("bob", "👍")).await.seq, 4);
    assert_eq!(stored(f.store(), add("bob", "👍")).await.seq, 5, "removed, then held again");
    let published = f.published(4).await;
    assert!(published.iter().all(|p| kind_of(p) == "reaction"));
    let Published::Room { json, .. } = &published[2] else { panic!() };
    let frame = parse(json);
    assert_eq!(
        (&frame["target"], &frame["emoji"], &frame["op"], &frame["from"]["id"]),
        (&1.into(), &"👍".into(), &"remove".into(), &"bob".into())
    );
    f.nothing_published().await;
}

pub async fn client_ids_cover_every_kind(f: &mut dyn Fixture) {
    let name = "c-kinds";
    let r = room(name);
    f.listen_room(&r).await;
    let first = stored(f.store(), draft(name, "alice", "one", Some("a"))).await;
    f.published(1).await;
    let again = outcome(&*f, event(name, "alice", edit(1, "two"), Some("a"))).await;
    assert_eq!(again, Outcome::Stored(first), "one namespace for every kind: the first one's ack");
    f.nothing_published().await;
    let reacted = stored(f.store(), event(name, "alice", react(1, "👍", ReactionOp::Add), Some("b"))).await;
    assert_eq!(
        outcome(&*f, event(name, "alice", react(1, "👍", ReactionOp::Add), Some("b"))).await,
        Outcome::Stored(reacted)
    );
    f.published(1).await;
    // An outcome that stored nothing is not remembered under its client_id.
    assert!(matches!(
        outcome(&*f, event(name, "alice", react(1, "👍", ReactionOp::Add), Some("c"))).await,
        Outcome::Unchanged { .. }
    ));
    assert_eq!(stored(f.store(), event(name, "alice", react(1, "👍", ReactionOp::Remove), Some("c"))).await.seq, 3);
    assert_eq!(outcome(&*f, event(name, "bob", edit(1, "x"), Some("d"))).await, Outcome::NotAuthor);
    assert_eq!(stored(f.store(), draft(name, "bob", "bob's", Some("d"))).await.seq, 4, "a refusal is not remembered");
    f.published(2).await;
    let page = f.store().read_room(&r, Window::latest(10)).await.expect("read");
    assert_eq!(seqs(&page.messages), [1, 2, 3, 4]);
}
