// The client against a real Triton server, through a TCP proxy the test can cut and block:
// a reconnect catches up on what was committed while the client was away, each event once.
// Started by tests/e2e/test_js_client.py, which provides TRITON_HTTP and TRITON_USER.
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";

import { connect } from "../../realtime/static/triton/triton.js";

const HTTP = process.env.TRITON_HTTP;
const USER = process.env.TRITON_USER ? JSON.parse(process.env.TRITON_USER) : null;

/** A loopback TCP proxy to the server whose connections can be cut and refused. */
async function startProxy(targetPort) {
  const pairs = new Set();
  let blocked = false;
  const server = net.createServer((client) => {
    if (blocked) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, "127.0.0.1");
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    cut() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    block(value) {
      blocked = value;
    },
    // Keep every open connection but forward nothing more: a link that died silently.
    freeze() {
      for (const { client, upstream } of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    close() {
      this.cut(); // server.close() waits for open connections, frozen ones included
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

async function until(predicate, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function rename(name) {
  const answer = await fetch(`${HTTP}/api/v1/users/${USER.id}`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${USER.token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name }),
  });
  assert.equal(answer.status, 200, await answer.text());
}

test("a reconnect resubscribes with since and hands over every missed event once", { skip: !HTTP }, async () => {
  const proxy = await startProxy(Number(new URL(HTTP).port));
  const states = [];
  let tokenRequests = 0;
  const triton = connect({
    url: `ws://127.0.0.1:${proxy.port}/ws/v1/`,
    getToken: async () => {
      tokenRequests += 1;
      return USER.token;
    },
    onState: (state) => states.push(state),
    minBackoffMs: 100,
    maxBackoffMs: 400,
  });
  const names = [];
  const confirmations = [];
  const topic = `user.${USER.id}`;
  triton.subscribe(
    topic,
    (frame) => {
      if (frame.event === "user.updated") names.push(frame.data.name);
    },
    { onSubscribed: (info) => confirmations.push(info) },
  );
  try {
    await until(() => confirmations.length === 1, "the subscription");
    assert.equal(confirmations[0].topic, topic);
    for (const name of ["a1", "a2", "a3"]) await rename(name);
    await until(() => names.length === 3, "the live events");

    proxy.block(true);
    proxy.cut();
    await until(() => triton.state === "reconnecting", "reconnecting");
    for (const name of ["b1", "b2", "b3", "b4", "b5"]) await rename(name);
    proxy.block(false);
    await until(() => names.length >= 8, "the missed events after the reconnect");
    await rename("c1");
    await until(() => names.length >= 9, "a live event after the catch-up");

    assert.deepEqual(names, ["a1", "a2", "a3", "b1", "b2", "b3", "b4", "b5", "c1"]);
    // Confirmed again after the reconnect, with everything missed recovered.
    assert.ok(confirmations.length >= 2, JSON.stringify(confirmations));
    assert.equal(confirmations.at(-1).recovered, true);
    assert.ok(tokenRequests >= 2, `a fresh token per connect (${tokenRequests})`);
    assert.deepEqual(states.slice(0, 2), ["connecting", "live"]);
    assert.ok(states.includes("reconnecting"));
    assert.equal(states.at(-1), "live");
  } finally {
    triton.close();
    await proxy.close();
  }
});

test("a connection that goes silent is detected by ping and replaced", { skip: !HTTP }, async () => {
  // Frozen link: the proxy keeps TCP open but forwards nothing, so only keepalive notices.
  const proxy = await startProxy(Number(new URL(HTTP).port));
  const triton = connect({
    url: `ws://127.0.0.1:${proxy.port}/ws/v1/`,
    getToken: async () => USER.token,
    pingIntervalMs: 200,
    pongTimeoutMs: 300,
    minBackoffMs: 50,
    maxBackoffMs: 100,
  });
  const states = [];
  triton.onState((state) => states.push(state));
  try {
    await until(() => triton.state === "live", "live");
    const first = triton.ws;
    proxy.freeze();
    await until(() => triton.ws !== first && triton.state === "live", "a new live connection");
    assert.ok(states.includes("reconnecting"));
  } finally {
    triton.close();
    await proxy.close();
  }
});
