//! Read cursors and unread counts, as every store must keep them
//! (`history.size` is 5 here).

use chat_shared::protocol::{RoomEventKind, Thread};
use history_store::{Cursor, CursorMove, DmDraft, Summary, Window};

use crate::cases::{draft, parse, someone, stored};
use crate::{room, user, Fixture};

fn cursor(seq: u64, epoch: &str) -> Cursor {
    Cursor { seq, epoch: epoch.to_owned() }
}

async fn summary(f: &dyn Fixture, reader: &str, thread: Thread, at: Cursor) -> Summary {
    f.store().summaries(&user(reader), &[(thread, at)]).await.expect("summaries").pop().expect("one summary")
}

pub async fn cursors_never_move_backwards(f: &mut dyn Fixture) {
    let (u, store) = (user("c-reader"), f.store());
    let a = Thread::Room(room("c-cursor-a"));
    let b = Thread::Room(room("c-cursor-b"));
    let set = |thread: &Thread, to: Cursor, how| {
        let (u, thread) = (u.clone(), thread.clone());
        async move { store.set_cursor(&u, &thread, to, how).await.expect("set_cursor") }
    };
    assert_eq!(set(&a, cursor(5, "e1"), CursorMove::Raise).await, (cursor(5, "e1"), true));
    assert_eq!(set(&a, cursor(3, "e1"), CursorMove::Raise).await, (cursor(5, "e1"), false), "never backwards");
    assert_eq!(set(&a, cursor(5, "e1"), CursorMove::Raise).await, (cursor(5, "e1"), false));
    assert_eq!(set(&a, cursor(1, "e1"), CursorMove::Create).await, (cursor(5, "e1"), false), "create keeps one");
    assert_eq!(set(&b, cursor(4, "e1"), CursorMove::Create).await, (cursor(4, "e1"), false), "created: no receipt");
    assert_eq!(set(&a, cursor(7, "e1"), CursorMove::Raise).await, (cursor(7, "e1"), true));
    let listed = store.cursors(&u).await.expect("cursors");
    assert_eq!(listed, [(a.clone(), cursor(7, "e1")), (b.clone(), cursor(4, "e1"))], "most recently moved first");
    // Under a new epoch the old cursor counts as 0.
    assert_eq!(set(&a, cursor(2, "e2"), CursorMove::Create).await, (cursor(0, "e2"), false));
    assert_eq!(set(&a, cursor(2, "e2"), CursorMove::Raise).await, (cursor(2, "e2"), true));
    assert_eq!(store.cursors(&user("c-nobody")).await.expect("cursors"), []);
}

pub async fn unread_counts_others_live_messages(f: &mut dyn Fixture) {
    let name = "c-unread";
    let r = room(name);
    let thread = Thread::Room(r.clone());
    let empty = summary(&*f, "alice", thread.clone(), cursor(0, "")).await;
    assert_eq!((empty.seq, empty.unread, empty.last_ts, empty.last.is_none()), (0, 0, None, true));
    for (who, text) in [("alice", "1"), ("bob", "2"), ("bob", "3"), ("alice", "4")] {
        stored(f.store(), draft(name, who, text, None)).await;
    }
    let epoch = f.store().read_room(&r, Window::latest(1)).await.expect("read").epoch;
    let at = |seq| cursor(seq, &epoch);
    let alice = summary(&*f, "alice", thread.clone(), at(0)).await;
    assert_eq!((alice.seq, alice.read_seq, alice.unread), (4, 0, 2), "bob's two; her own are not unread");
    assert_eq!(parse(alice.last.as_ref().expect("last").json.get())["text"], "4");
    assert!(alice.last_ts.is_some_and(|ts| ts > 1_600_000_000_000));
    assert_eq!(summary(&*f, "bob", thread.clone(), at(0)).await.unread, 2);
    assert_eq!(summary(&*f, "bob", thread.clone(), at(1)).await.unread, 1);

    let deleted = RoomEventKind::Delete { target: 3 };
    stored(f.store(), history_store::RoomDraft::new(r.clone(), someone("bob"), deleted, None)).await;
    let alice = summary(&*f, "alice", thread.clone(), at(0)).await;
    assert_eq!((alice.seq, alice.unread), (5, 1), "a deleted message is not unread");
    assert_eq!(
        parse(alice.last.as_ref().expect("last").json.get())["seq"],
        4,
        "the newest message, not the newest event"
    );
    assert_eq!(summary(&*f, "alice", thread.clone(), at(2)).await.unread, 0);
    let clamped = summary(&*f, "alice", thread.clone(), at(99)).await;
    assert_eq!((clamped.read_seq, clamped.unread), (5, 0), "a cursor is never above the latest");
    let stale = summary(&*f, "alice", thread.clone(), cursor(5, "another-epoch")).await;
    assert_eq!((stale.read_seq, stale.unread), (0, 1), "another epoch's cursor counts from 0");
    let any = summary(&*f, "alice", thread.clone(), cursor(2, Cursor::ANY_EPOCH)).await;
    assert_eq!((any.read_seq, any.unread, any.epoch), (2, 0, epoch.clone()), "ANY_EPOCH: the room's own");

    for text in ["6", "7", "8"] {
        stored(f.store(), draft(name, "alice", text, None)).await;
    }
    // The history holds 4..=8 now: bob's unread are alice's 4, 6, 7, 8.
    assert_eq!(summary(&*f, "bob", thread.clone(), at(0)).await.unread, 4, "counted over what the history holds");
}

pub async fn dm_cursors_start_at_zero(f: &mut dyn Fixture) {
    let (alice, bob) = (user("c-dm-alice"), user("c-dm-bob"));
    let draft = DmDraft {
        from: someone("c-dm-alice"),
        to: bob.clone(),
        text: "hello".into(),
        client_id: None,
        origin: std::sync::Arc::from("s-c-dm-alice"),
    };
    f.store().append_dm(draft).await.expect("dm");
    let of_alice = f.store().cursors(&alice).await.expect("cursors");
    let of_bob = f.store().cursors(&bob).await.expect("cursors");
    assert_eq!(of_alice, [(Thread::Dm(bob.clone()), cursor(0, ""))]);
    assert_eq!(of_bob, [(Thread::Dm(alice.clone()), cursor(0, ""))]);
    let bobs = summary(&*f, "c-dm-bob", Thread::Dm(alice.clone()), cursor(0, "")).await;
    assert_eq!((bobs.seq, bobs.read_seq, bobs.unread), (1, 0, 1));
    assert_eq!(parse(bobs.last.as_ref().expect("last").json.get())["text"], "hello");
    let alices = summary(&*f, "c-dm-alice", Thread::Dm(bob.clone()), cursor(0, "")).await;
    assert_eq!(alices.unread, 0, "her own DM is not unread");
    let (moved, changed) =
        f.store().set_cursor(&bob, &Thread::Dm(alice.clone()), cursor(1, ""), CursorMove::Raise).await.expect("raise");
    assert_eq!((moved.seq, changed), (1, true));
    assert_eq!(summary(&*f, "c-dm-bob", Thread::Dm(alice), moved).await.unread, 0);
}
