// The client's own logic against a scripted fake socket: de-duplication by offset, resync on
// `recovered: false`, resubscription with `since`, ack retries with one client_msg_id, backoff.
// Run: node --test tests/js/
import assert from "node:assert/strict";
import { test } from "node:test";

import { connect, parseOffset } from "../../realtime/static/triton/triton.js";

class FakeSocket {
  static instances = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.instances.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.();
    }, 0);
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close(code = 1000) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose?.({ code }), 0);
  }

  // test side
  push(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  frames(type) {
    return this.sent.filter((f) => f.type === type);
  }
}

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(predicate, what, timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await tick();
  }
}

function client(extra = {}) {
  FakeSocket.instances = [];
  let tokens = 0;
  const triton = connect({
    url: "ws://fake/ws/v1/",
    getToken: async () => `token-${++tokens}`,
    WebSocket: FakeSocket,
    minBackoffMs: 10,
    maxBackoffMs: 40,
    ...extra,
  });
  return { triton, tokens: () => tokens };
}

// The n-th socket the client opened (it opens one after getToken resolves).
async function socketNumber(n) {
  await until(() => FakeSocket.instances.length >= n, `socket #${n}`);
  return FakeSocket.instances[n - 1];
}

async function goLive(socket) {
  await until(() => socket.frames("auth").length === 1, "auth frame");
  socket.push({ type: "auth.ok", user_id: 7 });
}

function event(topic, offset, data) {
  return { type: "event", topic, event: "thing.changed", offset, data };
}

test("parseOffset reads <epoch>:<seq> and refuses the rest", () => {
  assert.deepEqual(parseOffset("ab12:7"), { epoch: "ab12", seq: 7 });
  assert.equal(parseOffset("7"), null);
  assert.equal(parseOffset("ab:x"), null);
  assert.equal(parseOffset(null), null);
});

test("each event is handed over once, in order, even when the server repeats it", async () => {
  const { triton } = client();
  const seen = [];
  triton.subscribe("user.7", (frame) => seen.push(frame.data.n));
  const socket = await socketNumber(1);
  await goLive(socket);
  await until(() => socket.frames("subscribe").length === 1, "subscribe");
  assert.equal(socket.frames("subscribe")[0].since, undefined);
  socket.push({ type: "subscribed", topic: "user.7", offset: "e1:3", recovered: true, id: "sub:user.7" });
  socket.push(event("user.7", "e1:3", { n: 3 })); // at or below the subscription point: old
  socket.push(event("user.7", "e1:4", { n: 4 }));
  socket.push(event("user.7", "e1:4", { n: 4 }));
  socket.push(event("user.7", "e1:5", { n: 5 }));
  assert.deepEqual(seen, [4, 5]);
  assert.equal(triton.offset("user.7"), "e1:5");
  triton.close();
});

test("a reconnect resubscribes with the last offset and asks for a fresh token", async () => {
  const states = [];
  const { triton, tokens } = client({ onState: (s) => states.push(s) });
  const seen = [];
  triton.subscribe("room.5", (frame) => seen.push(frame.data.n));
  let socket = await socketNumber(1);
  await goLive(socket);
  socket.push({ type: "subscribed", topic: "room.5", offset: "e1:0", recovered: true });
  socket.push(event("room.5", "e1:1", { n: 1 }));
  socket.close(1006);
  socket = await socketNumber(2);
  await until(() => socket.frames("auth").length === 1, "auth again");
  assert.equal(socket.frames("auth")[0].token, "token-2");
  assert.equal(tokens(), 2);
  socket.push({ type: "auth.ok", user_id: 7 });
  await until(() => socket.frames("subscribe").length === 1, "resubscribe");
  assert.equal(socket.frames("subscribe")[0].since, "e1:1");
  socket.push({ type: "subscribed", topic: "room.5", offset: "e1:3", recovered: true });
  socket.push(event("room.5", "e1:1", { n: 1 })); // replayed twice by a racing hub: dropped
  socket.push(event("room.5", "e1:2", { n: 2 }));
  socket.push(event("room.5", "e1:3", { n: 3 }));
  assert.deepEqual(seen, [1, 2, 3]);
  assert.deepEqual(states, ["connecting", "live", "reconnecting", "live"]);
  triton.close();
  assert.equal(states.at(-1), "closed");
});

test("recovered: false calls onResync and restarts from the server's offset", async () => {
  const resynced = [];
  const { triton } = client({ onResync: (topic) => resynced.push(topic) });
  const seen = [];
  triton.subscribe("dashboard", (frame) => seen.push(frame.offset));
  let socket = await socketNumber(1);
  await goLive(socket);
  socket.push({ type: "subscribed", topic: "dashboard", offset: "e1:10", recovered: true });
  socket.push(event("dashboard", "e1:11", {}));
  socket.close(1012);
  socket = await socketNumber(2);
  await goLive(socket);
  await until(() => socket.frames("subscribe").length === 1, "resubscribe");
  socket.push({ type: "subscribed", topic: "dashboard", offset: "e2:4", recovered: false });
  assert.deepEqual(resynced, ["dashboard"]);
  socket.push(event("dashboard", "e2:4", {})); // the new epoch's past: REST's job
  socket.push(event("dashboard", "e2:5", {}));
  assert.deepEqual(seen, ["e1:11", "e2:5"]);
  triton.close();
});

test("sendMessage is retried with the same client_msg_id and settles on the ack", async () => {
  const { triton } = client({ ackTimeoutMs: 30 });
  let socket = await socketNumber(1);
  await goLive(socket);
  const sent = triton.sendMessage(5, "hello");
  await until(() => socket.frames("message.send").length === 2, "a retry after the ack timeout");
  const [first, second] = socket.frames("message.send");
  assert.equal(first.client_msg_id, second.client_msg_id);
  assert.equal(first.room_id, 5);
  socket.close(1006); // and across a reconnect too
  socket = await socketNumber(2);
  await goLive(socket);
  await until(() => socket.frames("message.send").length === 1, "resent after reconnect");
  assert.equal(socket.frames("message.send")[0].client_msg_id, first.client_msg_id);
  socket.push({ type: "ack", client_msg_id: first.client_msg_id, message_id: 42 });
  assert.deepEqual(await sent, { type: "ack", client_msg_id: first.client_msg_id, message_id: 42 });
  triton.close();
});

test("a refused message rejects without retrying", async () => {
  const { triton } = client({ ackTimeoutMs: 1000 });
  const socket = await socketNumber(1);
  await goLive(socket);
  const sent = triton.sendMessage(9, "hi", { clientMsgId: "m-1" });
  await until(() => socket.frames("message.send").length === 1, "send");
  socket.push({ type: "error", code: "forbidden", message: "not a member", id: "m-1" });
  await assert.rejects(sent, (error) => error.code === "forbidden");
  triton.close();
});

test("presence follows joined and left events of a room", async () => {
  const { triton } = client();
  triton.subscribe("room.3", () => {});
  const socket = await socketNumber(1);
  await goLive(socket);
  socket.push({ type: "subscribed", topic: "room.3", offset: "e:1", recovered: true, presence: [7] });
  socket.push({ type: "event", topic: "room.3", event: "presence.joined", offset: "e:2", data: { room_id: 3, user_id: 8 } });
  assert.deepEqual(triton.presence("room.3").sort(), [7, 8]);
  socket.push({ type: "event", topic: "room.3", event: "presence.left", offset: "e:3", data: { room_id: 3, user_id: 7 } });
  assert.deepEqual(triton.presence("room.3"), [8]);
  triton.typing(3);
  assert.deepEqual(socket.frames("typing"), [{ type: "typing", room_id: 3 }]);
  triton.close();
});

test("a connection that stops answering pings is replaced", async () => {
  const { triton } = client({ pingIntervalMs: 20, pongTimeoutMs: 20 });
  const socket = await socketNumber(1);
  await goLive(socket);
  await until(() => socket.frames("ping").length >= 1, "a ping");
  // No pong: the client gives up on this socket and opens another.
  await until(() => FakeSocket.instances.length === 2, "a new socket after the pong timeout");
  triton.close();
});

test("unsubscribing the last handler unsubscribes the topic", async () => {
  const { triton } = client();
  const socket = await socketNumber(1);
  await goLive(socket);
  const stop = triton.subscribe("posts", () => {});
  await until(() => socket.frames("subscribe").length === 1, "subscribe");
  stop();
  assert.deepEqual(socket.frames("unsubscribe"), [{ type: "unsubscribe", topic: "posts" }]);
  triton.close();
});

test("onSubscribed is called on each confirmation, after which REST state misses nothing", async () => {
  const { triton } = client();
  const confirmations = [];
  const seen = [];
  triton.subscribe("dashboard", (frame) => seen.push(frame.offset), {
    onSubscribed: (info) => confirmations.push(info),
  });
  let socket = await socketNumber(1);
  await goLive(socket);
  await until(() => socket.frames("subscribe").length === 1, "subscribe");
  assert.deepEqual(confirmations, []); // not before the server confirmed
  socket.push({ type: "subscribed", topic: "dashboard", offset: "e1:4", recovered: true });
  assert.deepEqual(confirmations, [{ topic: "dashboard", offset: "e1:4", recovered: true }]);
  socket.push(event("dashboard", "e1:5", {}));
  // A second handler on a confirmed topic hears at once (the subscription is in place).
  const late = [];
  triton.subscribe("dashboard", () => {}, { onSubscribed: (info) => late.push(info) });
  await tick();
  assert.deepEqual(late, [{ topic: "dashboard", offset: "e1:5", recovered: true }]);
  socket.close(1006);
  socket = await socketNumber(2);
  await goLive(socket);
  await until(() => socket.frames("subscribe").length === 1, "resubscribe");
  socket.push({ type: "subscribed", topic: "dashboard", offset: "e2:1", recovered: false });
  assert.deepEqual(confirmations.at(-1), { topic: "dashboard", offset: "e2:1", recovered: false });
  assert.equal(confirmations.length, 2);
  assert.equal(late.length, 2);
  assert.deepEqual(seen, ["e1:5"]);
  triton.close();
});
