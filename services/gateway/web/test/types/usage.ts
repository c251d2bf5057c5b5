// The library's public API as a TypeScript user sees it: this file must
// type-check (npm test runs tsc on it), and each @ts-expect-error line must
// be an error, or tsc fails.

import { ChatClient, ChatError, type Room } from "chat-client";

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

  try {
    await client.dm("bob", "hi");
  } catch (err) {
    if (err instanceof ChatError) void err.clientId, err.code;
  }

  // @ts-expect-error: no such event
  client.on("message", () => {});
  // @ts-expect-error: rooms emit `event`, not `message`
  room.on("message", () => {});
  // @ts-expect-error: a room's send takes the text only
  await room.send("lobby", "hello");
  // @ts-expect-error: internal
  client.onFrame({});
  client.close();
}

void use;
