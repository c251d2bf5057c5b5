// Protocol 1.1 room events folded into messages, and the requests that
// make them (edit, delete, react, reply), on the fake clock and WebSocket.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { MAX_WAITING_EVENTS, RoomMessages } from "../chat.js";
import { BOB, ME, joined, message, reply, settle, setup, track } from "./fakes.js";

const edit = (seq, target, text, from = BOB) => ({ type: "edit", room: "r", seq, target, from, text, ts: seq });
const del = (seq, target, from = BOB) => ({ type: "delete", room: "r", seq, target, from, ts: seq });
const reaction = (seq, target, emoji, op = "add", from = BOB) => ({ type: "reaction", room: "r", seq, target, from, emoji, op, ts: seq });
const mine = (seq, text = `m${seq}`) => ({ ...message("r", seq, text), from: ME, client_id: `mine${seq}` });

/** A client joined to room "r" with `history`; the room's `message` updates are recorded. */
async function joinedRoom(history = [message("r", 1), message("r", 2)], options = {}) {
  const env = setup(options);
  track(env.client.connect());
  await env.accept();
  const room = env.client.room("r");
  const updates = [];
  room.on("message", ({ message: m, change }) => updates.push([m.seq, change]));
  track(room.join());
  const seq = history.at(-1)?.seq ?? 0;
  reply(env.Socket.last, "join", joined("r", { seq, history }));
  await settle();
  return { ...env, room, updates, socket: env.Socket.last };
}

describe("folding room events into messages", () => {
  test("an edit replaces the text and marks it edited; the latest edit holds, a repeat changes nothing", async () => {
    const { room, updates, socket } = await joinedRoom();
    socket.deliver(edit(3, 1, "first edit"));
    socket.deliver(edit(4, 1, "second edit"));
    assert.equal(room.message(1).text, "second edit");
    assert.equal(room.message(1).edited, true);
    assert.equal(room.message(1).editedTs, 4);
    assert.deepEqual(updates, [[1, "edited"], [1, "edited"]]);
    // An older edit seen again (an overlapping history page) does not win.
    await settle();
    const paging = track(room.history({ before: 5 }));
    await settle();
    reply(socket, "history", { type: "history", room: "r", messages: [message("r", 1), message("r", 2), edit(3, 1, "first edit")] });
    await settle();
    assert.equal(paging.done, true);
    assert.equal(room.message(1).text, "second edit");
    assert.deepEqual(room.messages.map((m) => m.seq), [1, 2]);
  });

  test("a delete leaves a placeholder: no text, no reactions; a deleted history entry is one too", async () => {
    const { room, updates, socket } = await joinedRoom([
      message("r", 1),
      { type: "message", room: "r", seq: 2, from: BOB, ts: 2, deleted: true },
      { type: "edit", room: "r", seq: 3, target: 2, from: BOB, ts: 3, deleted: true },
    ]);
    assert.equal(room.message(2).deleted, true);
    assert.equal(room.message(2).text, "");
    assert.equal(room.message(2).edited, false, "a scrubbed edit brings no text");
    socket.deliver(reaction(4, 1, "👍"));
    socket.deliver(del(5, 1));
    assert.deepEqual(
      { deleted: room.message(1).deleted, text: room.message(1).text, reactions: room.message(1).reactions },
      { deleted: true, text: "", reactions: [] },
    );
    socket.deliver(del(6, 1)); // cannot happen twice: changes nothing
    assert.deepEqual(updates, [[1, "reacted"], [1, "deleted"]]);
  });

  test("reactions count users, say which are mine, and an add seen twice counts once", async () => {
    const { room, socket } = await joinedRoom();
    socket.deliver(reaction(3, 1, "👍"));
    socket.deliver(reaction(4, 1, "👍", "add", ME));
    socket.deliver(reaction(5, 1, "🎉"));
    assert.deepEqual(room.message(1).reactions.map((r) => [r.emoji, r.count, r.mine, r.users.map((u) => u.id)]), [
      ["👍", 2, true, ["bob", "u1"]],
      ["🎉", 1, false, ["bob"]],
    ]);
    socket.deliver(reaction(6, 1, "👍", "remove", ME));
    assert.deepEqual(room.message(1).reactions.map((r) => [r.emoji, r.count, r.mine]), [["👍", 1, false], ["🎉", 1, false]]);
    socket.deliver(reaction(7, 1, "🎉", "remove"));
    assert.deepEqual(room.message(1).reactions.map((r) => r.emoji), ["👍"]);

    // Folded directly: the same events again (a replay) change nothing.
    const fold = new RoomMessages("r", () => "u1");
    const events = [message("r", 1), reaction(2, 1, "👍"), reaction(3, 1, "👍", "add", ME)];
    fold.apply(events);
    fold.apply(events);
    fold.apply([reaction(2, 1, "👍")]);
    assert.deepEqual(fold.get(1).reactions.map((r) => [r.emoji, r.count, r.mine]), [["👍", 2, true]]);
    // A remove replayed after a newer add by the same user is older: ignored.
    fold.apply([reaction(4, 1, "👍", "remove"), reaction(5, 1, "👍", "add")]);
    fold.apply([reaction(4, 1, "👍", "remove")]);
    assert.equal(fold.get(1).reactions[0].count, 2);
  });

  test("a reply quotes the message it answers, and follows its edits and delete", async () => {
    const { room, updates, socket } = await joinedRoom([message("r", 1, "the question")]);
    socket.deliver({ ...message("r", 2, "the answer"), reply_to: 1 });
    assert.deepEqual(room.message(2).replyTo, { seq: 1, from: BOB, text: "the question" });
    socket.deliver(edit(3, 1, "the better question"));
    assert.equal(room.message(2).replyTo.text, "the better question");
    socket.deliver(del(4, 1));
    assert.deepEqual(room.message(2).replyTo, { seq: 1, from: BOB, deleted: true });
    assert.deepEqual(updates, [[2, "added"], [1, "edited"], [2, "quoted"], [1, "deleted"], [2, "quoted"]]);
    const long = new RoomMessages("r", () => "u1");
    long.apply([message("r", 1, "x".repeat(500)), { ...message("r", 2), reply_to: 1 }]);
    assert.equal(long.get(2).replyTo.text.length, 140);
  });

  test("events whose target is older than the history wait, and apply when an older page loads it", async () => {
    const { room, socket } = await joinedRoom([
      { ...message("r", 10, "reply to an old one"), reply_to: 2 },
      reaction(11, 2, "❤️"),
      edit(12, 2, "edited long ago"),
    ]);
    assert.deepEqual(room.message(10).replyTo, { seq: 2 }, "only its seq while not loaded");
    assert.equal(room.message(2), undefined);
    assert.equal(room.oldestSeq, 10);
    const paging = track(room.history({ before: room.oldestSeq, limit: 50 }));
    await settle();
    assert.equal(socket.sentOf("history").at(-1).before, 10);
    reply(socket, "history", { type: "history", room: "r", messages: [message("r", 1), message("r", 2, "old")] });
    await settle();
    assert.equal(paging.value.length, 2, "the page as the server sent it");
    assert.equal(room.message(2).text, "edited long ago");
    assert.deepEqual(room.message(2).reactions.map((r) => [r.emoji, r.count]), [["❤️", 1]]);
    assert.deepEqual(room.message(10).replyTo, { seq: 2, from: BOB, text: "edited long ago" });
    assert.deepEqual(room.messages.map((m) => m.seq), [1, 2, 10]);
    assert.equal(room.oldestSeq, 1);
  });

  test("events waiting for a target stay bounded: the oldest targets' go first", () => {
    const fold = new RoomMessages("r", () => "u1");
    const events = [];
    for (let i = 0; i <= MAX_WAITING_EVENTS; i++) events.push(reaction(5000 + i, 1 + i, "👍"));
    fold.apply(events);
    assert.equal(fold.waitingCount, MAX_WAITING_EVENTS);
    fold.apply([message("r", 1), message("r", 2)]);
    assert.deepEqual(fold.get(1).reactions, [], "target 1's event was dropped");
    assert.equal(fold.get(2).reactions[0].count, 1, "target 2's was kept");
    assert.equal(fold.waitingCount, MAX_WAITING_EVENTS - 1);
  });

  test("a reset starts the messages over from the new history", async () => {
    const { room, clock, accept, socket } = await joinedRoom();
    socket.deliver(edit(3, 1, "changed"));
    socket.drop(1006);
    await clock.advance(1000);
    const next = await accept();
    reply(next, "join", joined("r", { seq: 1, epoch: "e2", recovered: false }));
    await settle();
    const resets = [];
    room.on("reset", (r) => resets.push(r));
    reply(next, "join", joined("r", { seq: 1, epoch: "e2", history: [message("r", 1, "new epoch")] }));
    await settle();
    assert.deepEqual(resets[0].messages.map((m) => [m.seq, m.text, m.edited]), [[1, "new epoch", false]]);
    assert.deepEqual(room.messages.map((m) => m.text), ["new epoch"]);
  });
});

describe("requests on messages", () => {
  test("edit, delete, react and a reply go with a client_id, and resolve with their ack", async () => {
    const { room, socket } = await joinedRoom([mine(1), message("r", 2)]);
    const editing = track(room.edit(1, "fixed"));
    const deleting = track(room.delete(1, { clientId: "del-1" }));
    const reacting = track(room.react(2, "🎉"));
    const unreacting = track(room.react(2, "🎉", "remove"));
    const replying = track(room.send("sure", { replyTo: 2 }));
    const plain = track(room.send("plain", { clientId: "p-1" }));
    await settle();
    const sent = socket.sent.filter((f) => f.type !== "join");
    assert.deepEqual(
      sent.map(({ id, client_id, ...rest }) => (assert.ok(client_id), rest)),
      [
        { type: "edit", room: "r", target: 1, text: "fixed" },
        { type: "delete", room: "r", target: 1 },
        { type: "react", room: "r", target: 2, emoji: "🎉", op: "add" },
        { type: "react", room: "r", target: 2, emoji: "🎉", op: "remove" },
        { type: "send", room: "r", text: "sure", reply_to: 2 },
        { type: "send", room: "r", text: "plain" },
      ],
    );
    assert.equal(sent[1].client_id, "del-1");
    assert.equal(sent[5].client_id, "p-1");
    for (const [i, frame] of sent.entries()) {
      const ack = frame.type === "react" && frame.op === "remove"
        ? { type: "ack", room: "r", ts: 9, changed: false }
        : { type: "ack", room: "r", seq: 3 + i, ts: 9 };
      socket.deliver({ ...ack, re: frame.id });
    }
    await settle();
    assert.equal(editing.value.seq, 3);
    assert.equal(deleting.value.seq, 4);
    assert.equal(reacting.value.seq, 5);
    assert.deepEqual(unreacting.value, { type: "ack", room: "r", ts: 9, changed: false, re: sent[3].id });
    assert.equal(replying.value.seq, 7);
    assert.equal(plain.value.seq, 8);
  });

  test("they wait while the room re-joins, are sent again with the same key after a lost reply, and resolve from the re-join's history", async () => {
    const { room, clock, accept, socket } = await joinedRoom([mine(1)], { clientIdWindowMs: 270_000 });
    const editing = track(room.edit(1, "while connected"));
    await settle();
    const first = socket.sentOf("edit")[0];
    socket.drop(1006);
    await settle();
    const reacting = track(room.react(1, "👍"));
    await clock.advance(1000);
    const next = await accept();
    assert.equal(next.sentOf("edit").length + next.sentOf("react").length, 0, "held until joined");
    // The edit was stored before the connection went: the resume brings it.
    const stored = { ...edit(2, 1, "while connected", ME), client_id: first.client_id };
    reply(next, "join", joined("r", { seq: 2, history: [stored] }));
    await settle();
    assert.equal(editing.value?.seq, 2, "resolved from the history");
    assert.equal(next.sentOf("edit").length, 0, "not sent again");
    assert.equal(next.sentOf("react").length, 1);
    assert.equal(room.message(1).text, "while connected");
    void reacting;
  });

  test("on a room not joined they fail at once, with their key", async () => {
    const { client } = setup();
    const room = client.room("never");
    await assert.rejects(room.edit(1, "x", { clientId: "k" }), (err) => err.code === "not_joined" && err.clientId === "k");
    await assert.rejects(room.react(1, "👍"), (err) => err.code === "not_joined" && !!err.clientId);
  });

  test("a late reply carrying the room and a seq is not taken for an event of the stream", async () => {
    const { room, socket } = await joinedRoom();
    const events = [];
    room.on("event", (e) => events.push(e));
    socket.deliver({ type: "ack", room: "r", seq: 3, ts: 1, re: 999 });
    socket.deliver({ type: "cursor", room: "r", seq: 3, unread: 0, re: 998 });
    socket.deliver(message("r", 3));
    assert.deepEqual(events.map((e) => [e.type, e.seq]), [["message", 3]]);
    assert.equal(room.state, "joined");
  });
});
