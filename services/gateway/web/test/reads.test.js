// Protocol 1.1 read state (cursors, unread counts, receipts, inbox) and
// presence status, on the fake clock and WebSocket.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { BOB, ME, joined, message, reply, settle, setup, track, welcome } from "./fakes.js";

const receipt = (seq, user = BOB, room = "r") => ({ type: "receipt", room, user, seq });
const dm = (seq, from = BOB, to = "u1") => ({ type: "dm", from, to, text: `d${seq}`, ts: seq, seq });

/** A client joined to room "r" at `seq`, cursor `readSeq`; its `read` events are recorded. */
async function joinedRoom({ seq = 2, readSeq = 1, unread = 1, history } = {}) {
  const env = setup();
  track(env.client.connect());
  const socket = await env.accept();
  const room = env.client.room("r");
  const reads = [];
  room.on("read", ({ readSeq: at, unread: count }) => reads.push([at, count]));
  track(room.join());
  history ??= Array.from({ length: seq }, (_, i) => message("r", i + 1));
  reply(socket, "join", { ...joined("r", { seq, history }), read_seq: readSeq, unread });
  await settle();
  return { ...env, socket, room, reads };
}

describe("a room's read state", () => {
  test("joined gives the cursor and the count; others' new messages count, mine and deleted ones do not", async () => {
    const { room, reads, socket } = await joinedRoom({ seq: 2, readSeq: 1, unread: 1 });
    assert.deepEqual([room.readSeq, room.unread], [1, 1]);
    socket.deliver(message("r", 3));
    socket.deliver({ ...message("r", 4), from: ME });
    socket.deliver({ type: "delete", room: "r", seq: 5, target: 3, from: BOB, ts: 5 });
    socket.deliver({ type: "reaction", room: "r", seq: 6, target: 2, from: BOB, emoji: "👍", op: "add", ts: 6 });
    assert.deepEqual(reads, [[1, 1], [1, 2], [1, 1]]);
    assert.equal(room.unread, 1);
  });

  test("markRead sends read for the newest seq, takes the cursor, and merges calls made while one is in flight", async () => {
    const { room, socket, reads } = await joinedRoom({ seq: 5, readSeq: 2, unread: 3 });
    const first = track(room.markRead());
    await settle();
    assert.deepEqual(socket.sentOf("read").map(({ room: r, seq, dm: d }) => ({ room: r, seq, dm: d })), [{ room: "r", seq: 5, dm: undefined }]);
    socket.deliver(message("r", 6));
    socket.deliver(message("r", 7));
    const second = track(room.markRead(6));
    const third = track(room.markRead());
    const again = track(room.markRead(5)); // covered by the one in flight
    await settle();
    assert.equal(socket.sentOf("read").length, 1, "one in flight at a time");
    reply(socket, "read", { type: "cursor", room: "r", seq: 5, unread: 2 });
    await settle();
    assert.deepEqual(first.value, { readSeq: 5, unread: 2 });
    assert.deepEqual(again.value, { readSeq: 5, unread: 2 });
    assert.deepEqual(socket.sentOf("read").map((f) => f.seq), [5, 7], "the calls made meanwhile: one read, for the highest");
    reply(socket, "read", { type: "cursor", room: "r", seq: 7, unread: 0 });
    await settle();
    assert.deepEqual(second.value, { readSeq: 7, unread: 0 });
    assert.deepEqual(third.value, { readSeq: 7, unread: 0 });
    assert.deepEqual(reads.at(-1), [7, 0]);
    // Read already, nothing unread: nothing to send.
    assert.deepEqual(await room.markRead(), { readSeq: 7, unread: 0 });
    assert.equal(socket.sentOf("read").length, 2);
  });

  test("receipts keep each reader's highest seq", async () => {
    const { room, socket } = await joinedRoom();
    const receipts = [];
    room.on("receipt", ({ user, seq }) => receipts.push([user.id, seq]));
    socket.deliver(receipt(2));
    socket.deliver(receipt(1)); // lower: late, ignored
    socket.deliver(receipt(2, { id: "cy", name: "Cy" }));
    assert.deepEqual(receipts, [["bob", 2], ["cy", 2]]);
    assert.deepEqual(room.receipts.map((r) => [r.user.name, r.seq]), [["Bob", 2], ["Cy", 2]]);
    assert.deepEqual([room.readSeq, room.unread], [1, 1], "others' receipts do not move this user's cursor");
  });

  test("a receipt of this user's from another session moves the cursor and counts again what is loaded", async () => {
    const { room, socket, reads } = await joinedRoom({ seq: 4, readSeq: 0, unread: 4 });
    socket.deliver(receipt(2, ME));
    assert.deepEqual([room.readSeq, room.unread], [2, 2], "messages 3 and 4 are still unread");
    socket.deliver(receipt(4, ME));
    assert.deepEqual([room.readSeq, room.unread], [4, 0]);
    assert.deepEqual(reads.at(-1), [4, 0]);
    // A message that comes after the receipt's seq was read there already.
    socket.deliver(receipt(6, ME));
    socket.deliver(message("r", 5));
    socket.deliver(message("r", 6));
    assert.equal(room.unread, 0);
  });

  test("when what is loaded does not reach the cursor, the count comes from inbox", async () => {
    const history = [message("r", 9), message("r", 10)];
    const { client, clock, room, socket } = await joinedRoom({ seq: 10, readSeq: 0, unread: 10, history });
    socket.deliver(receipt(5, ME));
    assert.equal(room.readSeq, 5);
    assert.equal(socket.sentOf("inbox").length, 0, "not at once: inbox may lag");
    await clock.advance(2500);
    assert.equal(socket.sentOf("inbox").length, 1);
    reply(socket, "inbox", { type: "inbox", rooms: [{ room: "r", seq: 10, read_seq: 5, unread: 5, last: message("r", 10) }], dms: [] });
    await settle();
    assert.deepEqual([room.readSeq, room.unread], [5, 5]);
    void client;
  });
});

describe("inbox", () => {
  test("returns every room and conversation, and updates the rooms followed and the conversations", async () => {
    const { client, socket, room } = await joinedRoom({ seq: 4, readSeq: 1, unread: 3 });
    const asking = track(client.inbox());
    await settle();
    const entries = {
      rooms: [
        { room: "r", seq: 4, read_seq: 2, unread: 2, last: message("r", 4) },
        { room: "elsewhere", seq: 9, read_seq: 9, unread: 0, last: null },
      ],
      dms: [{ dm: "bob", seq: 7, read_seq: 3, unread: 4, last: dm(7) }],
    };
    reply(socket, "inbox", { type: "inbox", ...entries });
    await settle();
    assert.deepEqual(asking.value, entries);
    assert.deepEqual([room.readSeq, room.unread], [2, 2]);
    const bob = client.conversation("bob");
    assert.deepEqual([bob.readSeq, bob.unread, bob.latest], [3, 4, 7]);
    // A DM the inbox counted already does not count again when it comes.
    socket.deliver(dm(7));
    assert.equal(bob.unread, 4);
    socket.deliver(dm(8));
    assert.equal(bob.unread, 5);
    // An entry behind the stream (inbox may lag) only moves the cursor.
    socket.deliver(message("r", 5));
    track(client.inbox());
    await settle();
    reply(socket, "inbox", { type: "inbox", rooms: [{ room: "r", seq: 4, read_seq: 4, unread: 0, last: null }], dms: [] });
    await settle();
    assert.deepEqual([room.readSeq, room.unread], [4, 1], "message 5 is unread still");
  });
});

describe("a DM conversation's read state", () => {
  test("counts the other user's DMs, marks read with dm, and follows receipts", async () => {
    const { client, accept } = setup();
    track(client.connect());
    const socket = await accept();
    const bob = client.conversation("bob");
    assert.equal(client.conversation("bob"), bob, "the same object");
    const reads = [];
    bob.on("read", ({ dm: other, readSeq, unread }) => reads.push([other, readSeq, unread]));
    socket.deliver(dm(1));
    socket.deliver(dm(2, ME, "bob"));
    socket.deliver(dm(3));
    assert.equal(bob.unread, 2);
    const marking = track(bob.markRead());
    await settle();
    assert.deepEqual(socket.sentOf("read").map(({ dm: other, seq }) => [other, seq]), [["bob", 3]]);
    reply(socket, "read", { type: "cursor", dm: "bob", seq: 3, unread: 0 });
    await settle();
    assert.deepEqual(marking.value, { readSeq: 3, unread: 0 });
    // Bob read up to 2: "seen" under this user's DM 2.
    socket.deliver({ type: "receipt", dm: "bob", user: BOB, seq: 2 });
    assert.equal(bob.peerReadSeq, 2);
    // This user read up to 4 on another device.
    socket.deliver(dm(4));
    assert.equal(bob.unread, 1);
    socket.deliver({ type: "receipt", dm: "bob", user: ME, seq: 4 });
    assert.deepEqual([bob.readSeq, bob.unread], [4, 0]);
    assert.deepEqual(reads, [["bob", 0, 1], ["bob", 0, 2], ["bob", 3, 0], ["bob", 3, 1], ["bob", 4, 0]]);
  });
});

describe("presence status", () => {
  test("setStatus sends status, keeps the reply, and sets it again after a reconnect", async () => {
    const { client, clock, accept } = setup();
    track(client.connect());
    const socket = await accept(welcome({ user: ME }));
    const setting = track(client.setStatus("away", "lunch"));
    await settle();
    const sent = socket.sentOf("status")[0];
    assert.deepEqual({ state: sent.state, text: sent.text }, { state: "away", text: "lunch" });
    socket.deliver({ type: "status", state: "away", text: "lunch", re: sent.id });
    await settle();
    assert.deepEqual(setting.value, { state: "away", text: "lunch" });
    assert.deepEqual(client.status, { state: "away", text: "lunch" });
    socket.drop(1006);
    await clock.advance(1000);
    const next = await accept();
    assert.deepEqual(next.sentOf("status").map((f) => [f.state, f.text]), [["away", "lunch"]]);
  });

  test("members carry the status they set, from joined and from presence", async () => {
    const { client, accept } = setup();
    track(client.connect());
    const socket = await accept();
    const room = client.room("r");
    const rosters = [];
    room.on("roster", (members) => rosters.push(members.map((m) => [m.id, m.status?.state ?? "-", m.status?.text ?? ""])));
    track(room.join());
    const busyBob = { ...BOB, status: { state: "busy", text: "in a call" } };
    reply(socket, "join", joined("r", { members: [ME, busyBob] }));
    await settle();
    socket.deliver({ type: "presence", room: "r", user: BOB, state: "online", status: { state: "away", text: "" } });
    socket.deliver({ type: "presence", room: "r", user: BOB, state: "online" });
    assert.deepEqual(rosters, [
      [["u1", "-", ""], ["bob", "busy", "in a call"]],
      [["u1", "-", ""], ["bob", "away", ""]],
      [["u1", "-", ""], ["bob", "-", ""]],
    ]);
  });
});
