// The library's public API as a TypeScript user sees it: this file must
// type-check (npm test runs tsc on it), and each @ts-expect-error line must
// be an error, or tsc fails.

import { ChatClient, ChatError, type Conversation, type Room } from "chat-client";

async function use(): Promise<void> {
  const client = new ChatClient("wss://chat.example.com/ws", { token: "jwt", requestTimeoutMs: 5000 });
  const welcome = await client.connect();
  const me: string = welcome.user.id;

  client.on("state", ({ state, delayMs, error }) => {
    const s: "idle" | "connecting" | "open" | "reconnecting" | "closed" = state;
    void s, delayMs, error?.code;
  });
  client.on("dm", (dm) => {
    const text: string = dm.text;
    const seq: number = dm.seq;
    void text, seq, dm.from.name;
  });

  const room: Room = client.room("lobby");
  room.on("reset", ({ history, reason }) => void [history.map((event) => event.seq), reason]);
  room.on("event", (event) => void event.seq);
  room.on("roster", (members) => void members.map((m) => m.name));
  room.on("state", ({ state }) => void (state === "rejoining"));
  const joined = await room.join({ limit: 20 });
  const epoch: string = joined.epoch;
  const ack = await room.send("hello", { clientId: "k-1" });
  const stored: number = ack.seq;
  const older = await room.history({ before: stored, limit: 50 });
  const dms = await client.dmHistory("bob", { after: 3 });
  void me, epoch, older, dms;

  // Protocol 1.1: messages folded from their events, read state, status.
  room.on("message", ({ message, change }) => {
    const text: string = message.text;
    const flags: boolean[] = [message.edited, message.deleted];
    const counts = message.reactions.map((r) => [r.emoji, r.count, r.mine, r.users.length] as const);
    const quoted: string | undefined = message.replyTo?.from?.name;
    void text, flags, counts, quoted, (change === "edited");
  });
  room.on("read", ({ readSeq, unread }) => void (readSeq + unread));
  room.on("receipt", ({ user, seq }) => void [user.name, seq]);
  room.on("roster", (members) => void members.map((m) => m.status?.state));
  const reply = await room.send("me too", { replyTo: stored });
  await room.edit(reply.seq, "me too!");
  const reaction = await room.react(reply.seq, "👍", "remove");
  const changed: boolean | undefined = reaction.changed;
  await room.delete(reply.seq, { clientId: "k-2" });
  const { readSeq, unread } = await room.markRead();
  const shown: number[] = room.messages.map((m) => m.seq);
  const bob: Conversation = client.conversation("bob");
  bob.on("read", ({ dm, unread: n }) => void [dm, n]);
  await bob.markRead(bob.latest);
  const seenUpTo: number = bob.peerReadSeq;
  const inbox = await client.inbox();
  const rooms: string[] = inbox.rooms.map((entry) => `${entry.room}: ${entry.unread}`);
  const status = await client.setStatus("busy", "in a call");
  void changed, readSeq, unread, shown, seenUpTo, rooms, status.text;

  // Protocol 1.1, part 2: signals, and why a connection was refused.
  client.on("signal", ({ from, session, data }) => void client.signal(from.id, { answer: data }, session));
  const delivered: number = await client.signal("bob", { kind: "offer" });
  client.on("state", ({ refusal }) => void [refusal?.status, refusal?.code]);
  void delivered;

  // Files: upload with progress, attach, link with credentials.
  const blob = new Blob(["hello"], { type: "text/plain" });
  const file = await client.upload(blob, "lobby", { name: "hello.txt", onProgress: (sent, total) => void (sent / total) });
  await room.send("", { attachments: [file.id] });
  const href: string = client.fileUrl(file.url);
  void href, file.size, file.content_type;

  try {
    await client.dm("bob", "hi");
  } catch (err) {
    if (err instanceof ChatError) void err.clientId, err.code;
  }

  // @ts-expect-error: no such event
  client.on("message", () => {});
  // @ts-expect-error: rooms emit `event` and `message`, not `messages`
  room.on("messages", () => {});
  // @ts-expect-error: a room's send takes the text only
  await room.send("lobby", "hello");
  // @ts-expect-error: an op is "add" or "remove"
  await room.react(1, "👍", "toggle");
  // @ts-expect-error: attachments are file ids
  await room.send("x", { attachments: [file] });
  // @ts-expect-error: a signal needs data
  await client.signal("bob");
  // @ts-expect-error: no such status
  await client.setStatus("asleep");
  // @ts-expect-error: internal
  client.onFrame({});
  client.close();
}

void use;
