// Requests, rooms and DMs on a fake clock and a fake WebSocket: no real
// time passes and no socket opens; each test plays the server.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ChatError, SeenSeqs } from "../chat.js";
import { BOB, ME, joined, message, reply, settle, setup, track, welcome } from "./fakes.js";

describe("the request queue", () => {
  test("a request's timeout starts when it is sent, not while it waits offline", async () => {
    const { client, clock, Socket, accept, states } = setup({ requestTimeoutMs: 10_000, reconnectMaxMs: 30_000 });
    track(client.connect());
    await accept();
    const room = client.room("r");
    const joining = track(room.join());
    reply(Socket.last, "join", joined("r"));
    await settle();
    assert.equal(joining.done, true);
    Socket.last.drop(1006);
    await settle();
    const sending = track(room.send("typed while offline"));
    // Two minutes of failed attempts.
    while (clock.time < 1_000_000 + 120_000) {
      await clock.advance(states.at(-1).delayMs ?? 1);
      await settle();
      Socket.last.drop(1006);
      await settle();
    }
    assert.equal(sending.done, false, "still waiting, not timed out");
    await clock.advance(states.at(-1).delayMs);
    const socket = await accept();
    // The re-join first, then the send, once joined (`inbox`, asked after
    // every reconnect for DM catch-up, goes its own way).
    const types = () => socket.sent.map((f) => f.type).filter((t) => t !== "inbox");
    assert.deepEqual(types(), ["join"]);
    reply(socket, "join", joined("r"));
    await settle();
    assert.deepEqual(types(), ["join", "send"]);
    await clock.advance(9_999);
    assert.equal(sending.done, false);
    await clock.advance(1);
    assert.equal(sending.error?.code, "timeout");
    assert.ok(sending.error.clientId, "the key to retry with");
  });

  test("a send whose reply was lost is sent again with its client_id, inside the window only", async () => {
    const { client, clock, Socket, accept } = setup({ clientIdWindowMs: 270_000, requestTimeoutMs: 600_000 });
    track(client.connect());
    await accept();
    const room = client.room("r");
    track(room.join());
    reply(Socket.last, "join", joined("r"));
    await settle();
    const first = track(room.send("one"));
    await settle();
    const sent = Socket.last.sentOf("send")[0];
    Socket.last.drop(1006);
    await clock.advance(1000);
    const socket = await accept();
    reply(socket, "join", joined("r"));
    await settle();
    const again = socket.sentOf("send")[0];
    assert.equal(again.client_id, sent.client_id, "the same key: stored once");
    assert.equal(again.text, "one");

    // Lost again, and the next connection comes after the window: sending
    // it again could store it twice.
    socket.drop(1006);
    await settle();
    await clock.advance(300_000);
    const later = await accept();
    reply(later, "join", joined("r"));
    await settle();
    assert.equal(later.sentOf("send").length, 0, "not sent a third time");
    assert.equal(first.error?.code, "expired");
    assert.equal(first.error.clientId, sent.client_id, "the key, to look for it or retry");
  });

  test("a send whose reply was lost but which was stored resolves from the re-join, and is not sent again", async () => {
    const { client, clock, Socket, accept } = setup({ clientIdWindowMs: 270_000 });
    track(client.connect());
    await accept();
    const room = client.room("r");
    track(room.join());
    reply(Socket.last, "join", joined("r", { seq: 1 }));
    await settle();
    const sending = track(room.send("stored, ack lost"));
    await settle();
    const sent = Socket.last.sentOf("send")[0];
    Socket.last.drop(1006);
    await clock.advance(300_000);
    const socket = await accept();
    const stored = { ...message("r", 2, sent.text), from: ME, client_id: sent.client_id };
    reply(socket, "join", joined("r", { seq: 2, history: [stored] }));
    await settle();
    assert.equal(sending.value?.seq, 2);
    assert.equal(socket.sentOf("send").length, 0);
  });

  test("reads and joins in flight are sent again after a reconnect", async () => {
    const { client, clock, Socket, accept } = setup();
    track(client.connect());
    await accept();
    const pinging = track(client.ping());
    await settle();
    Socket.last.drop(1006);
    await clock.advance(1000);
    const socket = await accept();
    reply(socket, "ping", { type: "pong", ts: 42 });
    await settle();
    assert.equal(pinging.value, 42);
  });

  test("a reply that comes after its timeout is ignored, and the queue keeps going", async () => {
    const { client, clock, Socket, accept } = setup({ requestTimeoutMs: 1000 });
    track(client.connect());
    const socket = await accept();
    const pinging = track(client.ping());
    await clock.advance(1000);
    assert.equal(pinging.error?.code, "timeout");
    reply(socket, "ping", { type: "pong", ts: 1 });
    const next = track(client.ping());
    await settle();
    reply(socket, "ping", { type: "pong", ts: 2 });
    await settle();
    assert.equal(next.value, 2);
  });

  test("a full queue refuses more, and a frame over max_frame_bytes fails alone", async () => {
    const { client, Socket, accept } = setup({ maxPendingRequests: 2 });
    const pings = [track(client.ping()), track(client.ping())];
    await assert.rejects(client.ping(), (err) => err instanceof ChatError && err.code === "queue_full");
    track(client.connect());
    const socket = await accept(welcome({ user: ME, limits: { max_frame_bytes: 100 } }));
    for (const ping of socket.sentOf("ping")) socket.deliver({ type: "pong", ts: 1, re: ping.id });
    await settle();
    assert.ok(pings.every((p) => p.value === 1), "the queued ones went once connected");
    const big = track(client.dm("bob", "x".repeat(200)));
    await settle();
    assert.equal(big.error?.code, "too_large");
    assert.equal(Socket.last.sentOf("dm").length, 0);
    assert.equal(client.state, "open");
  });

  test("a burst is paced under the connection's rate", async () => {
    const { client, clock, Socket, accept } = setup();
    track(client.connect());
    const socket = await accept(welcome({ user: ME, limits: { messages_per_second: 10 } }));
    for (let i = 0; i < 30; i++) track(client.ping());
    await settle();
    assert.equal(socket.sentOf("ping").length, 9, "a tenth under the burst");
    await clock.advance(1000);
    assert.equal(socket.sentOf("ping").length, 18);
    void Socket;
  });
});

describe("a room", () => {
  async function joinedRoom(options = {}) {
    const env = setup(options);
    track(env.client.connect());
    await env.accept();
    const room = env.client.room("r");
    const events = [];
    const resets = [];
    const roomStates = [];
    room.on("event", (event) => events.push(event));
    room.on("reset", (reset) => resets.push(reset));
    room.on("state", ({ state }) => roomStates.push(state));
    track(room.join());
    reply(env.Socket.last, "join", joined("r", { seq: 2, history: [message("r", 1), message("r", 2)] }));
    await settle();
    return { ...env, room, events, resets, roomStates };
  }

  test("a live gap is caught up by re-joining with since, and each event comes once, in order", async () => {
    const { Socket, room, events, resets } = await joinedRoom();
    assert.equal(resets.length, 1);
    assert.deepEqual(resets[0].history.map((m) => m.seq), [1, 2]);
    const socket = Socket.last;
    socket.deliver(message("r", 3));
    socket.deliver(message("r", 5)); // 4 went missing
    await settle();
    assert.equal(room.state, "rejoining");
    const rejoin = socket.sentOf("join").at(-1);
    assert.equal(rejoin.since, 3);
    assert.equal(rejoin.epoch, "e1");
    socket.deliver(message("r", 6)); // live, while re-joining: the re-join brings it
    reply(socket, "join", joined("r", { seq: 6, history: [message("r", 4), message("r", 5), message("r", 6)] }));
    await settle();
    assert.equal(room.state, "joined");
    assert.deepEqual(events.map((e) => e.seq), [3, 4, 5, 6]);
    socket.deliver(message("r", 6)); // a repeat
    socket.deliver(message("r", 7));
    assert.deepEqual(events.map((e) => e.seq), [3, 4, 5, 6, 7]);
  });

  test("sends wait while the room re-joins, and go once it is joined", async () => {
    const { clock, Socket, room, accept, roomStates } = await joinedRoom();
    Socket.last.drop(1006);
    await settle();
    assert.equal(room.state, "rejoining");
    const sending = track(room.send("hello"));
    await clock.advance(1000);
    const socket = await accept();
    assert.equal(socket.sentOf("send").length, 0, "held until joined");
    reply(socket, "join", joined("r", { seq: 2 }));
    await settle();
    const send = socket.sentOf("send")[0];
    assert.equal(send.text, "hello");
    socket.deliver({ type: "ack", re: send.id, room: "r", seq: 3, ts: 1 });
    await settle();
    assert.equal(sending.value.seq, 3);
    assert.deepEqual(roomStates, ["joining", "joined", "rejoining", "joined"]);
  });

  test("recovered: false (a new epoch) joins afresh and resets the view with the new history", async () => {
    const { clock, Socket, room, accept, events, resets } = await joinedRoom();
    Socket.last.drop(1006);
    await clock.advance(1000);
    const socket = await accept();
    // History was lost: the server's seq is below ours, in a new epoch.
    const resume = reply(socket, "join", joined("r", { seq: 1, epoch: "e2", history: [], recovered: false }));
    assert.equal(resume.since, 2);
    await settle();
    const fresh = socket.sentOf("join").at(-1);
    assert.notEqual(fresh.id, resume.id);
    assert.equal(fresh.since, undefined, "a fresh join, not a resume");
    reply(socket, "join", joined("r", { seq: 1, epoch: "e2", history: [message("r", 1, "after the restart")] }));
    await settle();
    assert.equal(room.state, "joined");
    assert.equal(resets.length, 2);
    assert.equal(resets[1].reason, "not_recovered");
    assert.equal(resets[1].epoch, "e2");
    assert.deepEqual(resets[1].history.map((m) => m.text), ["after the restart"]);
    // The new epoch's next messages are live events.
    socket.deliver(message("r", 2, "next"));
    assert.deepEqual(events.map((e) => e.text), ["next"]);
    assert.equal(room.epoch, "e2");
  });

  test("seq 1 after a higher seq (the history started over while connected) resets the room", async () => {
    const { Socket, room, events, resets } = await joinedRoom();
    const socket = Socket.last;
    socket.deliver(message("r", 1, "first of the new epoch"));
    await settle();
    assert.equal(room.state, "rejoining");
    assert.deepEqual(events, [], "not appended to the old history");
    reply(socket, "join", joined("r", { seq: 1, epoch: "e2", history: [], recovered: false }));
    await settle();
    reply(socket, "join", joined("r", { seq: 1, epoch: "e2", history: [message("r", 1, "first of the new epoch")] }));
    await settle();
    assert.equal(resets.at(-1).epoch, "e2");
    assert.deepEqual(resets.at(-1).history.map((m) => m.text), ["first of the new epoch"]);
  });

  test("a joined that comes after its request timed out is taken", async () => {
    const { client, clock, Socket, accept } = setup({ requestTimeoutMs: 1000 });
    track(client.connect());
    const socket = await accept();
    const room = client.room("slow");
    const resets = [];
    room.on("reset", (r) => resets.push(r));
    const joining = track(room.join());
    await clock.advance(1000);
    assert.equal(joining.error?.code, "timeout");
    assert.equal(room.state, "failed");
    reply(socket, "join", joined("slow", { seq: 4, history: [message("slow", 4)] }));
    await settle();
    assert.equal(room.state, "joined", "the server has us in the room: so does the client");
    assert.equal(resets.length, 1);
    // One for a room this client never followed (or left) is left on the server.
    socket.deliver({ ...joined("gone"), re: 999 });
    await settle();
    assert.deepEqual(socket.sentOf("leave").map((f) => f.room), ["gone"]);
    void Socket;
  });

  test("a re-join refused for good fails the room and the sends waiting for it", async () => {
    const { clock, Socket, room, accept } = await joinedRoom();
    Socket.last.drop(1006);
    await settle();
    const sending = track(room.send("held"));
    await clock.advance(1000);
    const socket = await accept();
    reply(socket, "join", { type: "error", code: "forbidden", message: "no" });
    await settle();
    assert.equal(room.state, "failed");
    assert.equal(sending.error?.code, "forbidden");
    assert.ok(sending.error.clientId);
  });

  test("the roster follows joined and presence", async () => {
    const { Socket, room } = await joinedRoom();
    const rosters = [];
    room.on("roster", (r) => rosters.push(r.map((u) => u.id)));
    Socket.last.deliver({ type: "presence", room: "r", user: BOB, state: "online" });
    Socket.last.deliver({ type: "presence", room: "r", user: ME, state: "offline" });
    assert.deepEqual(rosters, [["u1", "bob"], ["bob"]]);
  });
});

describe("direct messages", () => {
  function dm(seq, from = BOB, to = "u1") {
    return { type: "dm", from, to, text: `d${seq}`, ts: seq, seq, client_id: `k${seq}` };
  }

  test("after a reconnect each known conversation catches up from its newest seq, in order, once", async () => {
    const { client, clock, Socket, accept } = setup();
    const got = [];
    client.on("dm", (d) => got.push(d.seq));
    track(client.connect());
    let socket = await accept();
    socket.deliver(dm(1));
    socket.deliver(dm(2));
    socket.drop(1006);
    await clock.advance(1000);
    socket = await accept();
    const history = socket.sentOf("history")[0];
    assert.deepEqual({ dm: history.dm, after: history.after }, { dm: "bob", after: 2 });
    // Live DMs during the catch-up wait for it, and the queue's replay is a repeat.
    socket.deliver(dm(5));
    socket.deliver(dm(2));
    assert.deepEqual(got, [1, 2]);
    socket.deliver({ type: "history", dm: "bob", messages: [dm(3), dm(4), dm(5)], re: history.id });
    await settle();
    assert.deepEqual(got, [1, 2, 3, 4, 5]);
  });

  test("after a reconnect, a conversation only `inbox` knows catches up on its unread DMs", async () => {
    const { client, clock, accept } = setup();
    const got = [];
    client.on("dm", (d) => got.push(`${d.from.id}:${d.seq}`));
    track(client.connect());
    let socket = await accept();
    socket.deliver(dm(1));
    socket.drop(1006);
    await clock.advance(1000);
    socket = await accept();
    const bob = socket.sentOf("history")[0];
    const inbox = socket.sentOf("inbox")[0];
    assert.ok(inbox, "inbox is asked after a reconnect");
    const carol = { id: "carol", name: "carol" };
    const last = dm(3, carol);
    socket.deliver({
      type: "inbox",
      re: inbox.id,
      rooms: [],
      dms: [
        { dm: "bob", seq: 1, read_seq: 1, unread: 0, last: dm(1) },
        { dm: "carol", seq: 3, read_seq: 1, unread: 2, last },
        { dm: "dave", seq: 4, read_seq: 4, unread: 0, last: dm(4, { id: "dave", name: "dave" }) },
      ],
    });
    await settle();
    const histories = socket.sentOf("history");
    assert.deepEqual(histories.slice(1).map((h) => [h.dm, h.after]), [["carol", 1]], "only the unread, unknown one");
    socket.deliver({ type: "history", dm: "bob", messages: [], re: bob.id });
    socket.deliver({ type: "history", dm: "carol", messages: [dm(2, carol), last], re: histories[1].id });
    await settle();
    assert.deepEqual(got, ["bob:1", "carol:2", "carol:3"]);
  });

  test("a sent DM is a `dm` event too, with this user as sender", async () => {
    const { client, Socket, accept } = setup();
    const got = [];
    client.on("dm", (d) => got.push(d));
    track(client.connect());
    const socket = await accept();
    const sending = track(client.dm("bob", "hi", { clientId: "mine" }));
    await settle();
    reply(socket, "dm", { type: "ack", seq: 1, ts: 5, to: "bob", delivered: true });
    await settle();
    assert.equal(sending.value.seq, 1);
    assert.deepEqual(got.map((d) => [d.from.id, d.to, d.text, d.client_id]), [["u1", "bob", "hi", "mine"]]);
    // The same DM echoed to this session by the server is a repeat.
    socket.deliver({ ...dm(1, ME, "bob"), text: "hi" });
    assert.equal(got.length, 1);
    void Socket;
  });
});

test("seen DM seqs drop repeats and stay bounded", () => {
  const seen = new SeenSeqs(3);
  assert.deepEqual([1, 2, 2, 3, 1].map((s) => seen.add(s)), [true, true, false, true, false]);
  assert.equal(seen.add(4), true);
  assert.equal(seen.seqs.size, 3);
  assert.deepEqual([...seen.seqs].sort(), [2, 3, 4]);
});
