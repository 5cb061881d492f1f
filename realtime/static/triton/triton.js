// Triton realtime client: one dependency-free ES module for browsers and Node (>= 20 with a
// global WebSocket). It speaks the /ws/v1/ protocol (docs/protocol.md):
//
//   import { connect } from "/static/triton/triton.js";
//   const triton = connect({ url: "wss://example.com/ws/v1/", getToken: async () => token });
//   const stop = triton.subscribe("dashboard", (event) => render(event.data), {
//     onSubscribed: () => reloadOverRest(), // the server confirmed (again): load the state now
//   });
//   triton.onState((state) => badge.textContent = state);
//
// What it promises the application:
// - each event of a subscribed topic is handed over once and in offset order, across
//   reconnects: every topic is resubscribed with the last offset seen (`since`) and anything
//   at or below that offset is dropped;
// - when the server cannot replay what was missed (`recovered: false`), `onResync(topic)` is
//   called so the application reloads that state over REST;
// - `onSubscribed` of `subscribe` is called each time the server confirms the subscription
//   (the first time and after every reconnect): a first subscription starts at the present,
//   so state loaded over REST from then on misses no event;
// - a fresh token is asked of `getToken` on every (re)connect;
// - reconnects back off exponentially with jitter; a silent connection is detected by ping.

const DEFAULTS = {
  minBackoffMs: 500,
  maxBackoffMs: 30000,
  pingIntervalMs: 20000,
  pongTimeoutMs: 10000,
  connectTimeoutMs: 10000,
  ackTimeoutMs: 5000,
  sendAttempts: 5,
};

/** Parse "<epoch>:<seq>" into {epoch, seq}, or null. */
export function parseOffset(text) {
  if (typeof text !== "string") return null;
  const at = text.lastIndexOf(":");
  if (at <= 0) return null;
  const seq = Number(text.slice(at + 1));
  if (!Number.isSafeInteger(seq) || seq < 0) return null;
  return { epoch: text.slice(0, at), seq };
}

/** Whether offset `b` comes after offset `a` within the same history (epoch). */
function isNewer(a, b) {
  if (a === null) return true;
  if (b.epoch !== a.epoch) return true; // the topic's history started anew
  return b.seq > a.seq;
}

function newId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  return `${Date.now().toString(16)}-${Math.random().toString(16).slice(2)}`;
}

class Topic {
  constructor(name) {
    this.name = name;
    this.handlers = new Set();
    this.last = null; // last offset handed to the application: {epoch, seq}
    this.lastText = null;
    this.subscribed = false;
    this.presence = new Set();
    this.onSubscribed = new Set();
  }
}

export class TritonClient {
  constructor(options) {
    if (!options || !options.url || typeof options.getToken !== "function") {
      throw new TypeError("connect({url, getToken}) needs a url and a getToken function");
    }
    this.options = { ...DEFAULTS, ...options };
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) throw new Error("no WebSocket implementation available");
    this.state = "connecting";
    this.userId = null;
    this.topics = new Map();
    this.pending = new Map(); // client_msg_id -> pending send
    this.stateListeners = new Set();
    this.attempt = 0;
    this.ws = null;
    this.timers = { reconnect: null, ping: null, pong: null };
    this.closedByUser = false;
    this.nextRequest = 0;
    if (options.onState) this.onState(options.onState);
    this._open();
  }

  // --- public API ----------------------------------------------------------------------------

  /** Subscribe to a topic; returns a function that unsubscribes this handler.
   *  `onSubscribed({topic, offset, recovered})`, if given, is called each time the server
   *  confirms the subscription (at once if it already has): the moment to load over REST. */
  subscribe(name, onEvent, { onSubscribed } = {}) {
    let topic = this.topics.get(name);
    const first = topic === undefined;
    if (first) {
      topic = new Topic(name);
      this.topics.set(name, topic);
    }
    topic.handlers.add(onEvent);
    if (onSubscribed) {
      topic.onSubscribed.add(onSubscribed);
      if (topic.subscribed) {
        const info = { topic: name, offset: topic.lastText, recovered: true };
        queueMicrotask(() => onSubscribed(info));
      }
    }
    if (first && this.state === "live") this._sendSubscribe(topic);
    return () => {
      topic.handlers.delete(onEvent);
      if (onSubscribed) topic.onSubscribed.delete(onSubscribed);
      if (topic.handlers.size === 0 && this.topics.get(name) === topic) {
        this.topics.delete(name);
        if (this.state === "live") this._send({ type: "unsubscribe", topic: name });
      }
    };
  }

  /** Listen to connection state changes: connecting, live, reconnecting, closed. */
  onState(listener) {
    this.stateListeners.add(listener);
    listener(this.state);
    return () => this.stateListeners.delete(listener);
  }

  /** Send a chat message; settles with the server's ack `{client_msg_id, message_id}`.
   *  Retried with the same client_msg_id (the server stores it once) until acknowledged. */
  sendMessage(roomId, body, { clientMsgId = newId() } = {}) {
    return new Promise((resolve, reject) => {
      const entry = {
        frame: { type: "message.send", room_id: roomId, body, client_msg_id: clientMsgId, id: clientMsgId },
        resolve,
        reject,
        attempts: 0,
        timer: null,
      };
      this.pending.set(clientMsgId, entry);
      if (this.state === "live") this._transmit(entry);
    });
  }

  /** Tell a room's members this user is typing (not stored, not echoed back). */
  typing(roomId) {
    if (this.state === "live") this._send({ type: "typing", room_id: roomId });
  }

  /** User ids present in a subscribed room topic (`room.{id}`), kept up to date. */
  presence(name) {
    const topic = this.topics.get(name);
    return topic ? [...topic.presence] : [];
  }

  /** The last offset seen for a topic ("<epoch>:<seq>"), or null. */
  offset(name) {
    return this.topics.get(name)?.lastText ?? null;
  }

  /** Close for good: no reconnect; pending sends are rejected. */
  close() {
    this.closedByUser = true;
    this._clearTimers();
    if (this.ws) this.ws.close(1000);
    for (const entry of this.pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(new Error("client closed"));
    }
    this.pending.clear();
    this._setState("closed");
  }

  // --- connection ----------------------------------------------------------------------------

  async _open() {
    let token;
    try {
      token = await this.options.getToken();
    } catch (error) {
      this._scheduleReconnect();
      return;
    }
    if (this.closedByUser) return;
    let ws;
    try {
      ws = new this.WebSocket(this.options.url);
    } catch (error) {
      this._scheduleReconnect();
      return;
    }
    this.ws = ws;
    // A handshake that hangs (a half-dead proxy) counts as a failed attempt.
    this.timers.pong = setTimeout(() => this._lost(ws), this.options.connectTimeoutMs);
    ws.onopen = () => {
      if (this.ws !== ws) return;
      clearTimeout(this.timers.pong);
      ws.send(JSON.stringify({ type: "auth", token }));
      this._armPing();
    };
    ws.onmessage = (message) => {
      if (this.ws !== ws) return;
      this._alive();
      let frame;
      try {
        frame = JSON.parse(typeof message.data === "string" ? message.data : String(message.data));
      } catch {
        return;
      }
      this._onFrame(frame);
    };
    // Some WebSocket implementations report a refused handshake with `error` only, or late:
    // whichever of error and close comes first ends this socket.
    ws.onclose = () => this._lost(ws);
    ws.onerror = () => this._lost(ws);
  }

  _lost(ws) {
    if (this.ws !== ws) return;
    this.ws = null;
    this._clearTimers();
    try {
      ws.close();
    } catch {
      // already closing
    }
    for (const topic of this.topics.values()) topic.subscribed = false;
    if (this.closedByUser) {
      this._setState("closed");
      return;
    }
    // Whatever the code (4401 included: getToken may have a fresh token), try again.
    this._scheduleReconnect();
  }

  _scheduleReconnect() {
    if (this.closedByUser) return;
    this._setState(this.userId === null && this.attempt === 0 ? "connecting" : "reconnecting");
    const { minBackoffMs, maxBackoffMs } = this.options;
    const ceiling = Math.min(maxBackoffMs, minBackoffMs * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2); // "equal jitter"
    this.attempt += 1;
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = setTimeout(() => this._open(), delay);
  }

  _onFrame(frame) {
    switch (frame.type) {
      case "auth.ok":
        this.userId = frame.user_id;
        this.attempt = 0;
        this._setState("live");
        for (const topic of this.topics.values()) this._sendSubscribe(topic);
        for (const entry of this.pending.values()) this._transmit(entry);
        break;
      case "subscribed":
        this._onSubscribed(frame);
        break;
      case "event":
        this._onEvent(frame);
        break;
      case "ack":
        this._settle(frame.client_msg_id, (entry) => entry.resolve(frame));
        break;
      case "unsubscribed":
        if (frame.reason) this._emitError(frame.topic, frame);
        break;
      case "error":
        if (frame.id !== undefined && this.pending.has(frame.id)) {
          // The server refused the message itself (not a member, bad body): do not retry.
          this._settle(frame.id, (entry) => entry.reject(Object.assign(new Error(frame.message), frame)));
        } else if (typeof frame.id === "string" && frame.id.startsWith("sub:")) {
          this._emitError(frame.id.slice(4), frame);
        }
        break;
      default:
        break; // pong and anything newer than this client
    }
  }

  _sendSubscribe(topic) {
    const frame = { type: "subscribe", topic: topic.name, id: `sub:${topic.name}` };
    if (topic.lastText !== null) frame.since = topic.lastText;
    topic.sinceSent = topic.lastText;
    this._send(frame);
  }

  _onSubscribed(frame) {
    const topic = this.topics.get(frame.topic);
    if (!topic) return;
    topic.subscribed = true;
    if (Array.isArray(frame.presence)) topic.presence = new Set(frame.presence);
    const latest = parseOffset(frame.offset);
    if (topic.sinceSent === null || topic.sinceSent === undefined) {
      // A first subscription starts at the present: the replayed past is REST's job.
      if (latest && isNewer(topic.last, latest)) {
        topic.last = latest;
        topic.lastText = frame.offset;
      }
    } else if (frame.recovered === false) {
      // What was missed is gone from the server's history: the application reloads.
      topic.last = latest;
      topic.lastText = frame.offset;
      const onResync = this.options.onResync;
      if (onResync) onResync(topic.name);
    }
    const info = { topic: topic.name, offset: topic.lastText, recovered: frame.recovered !== false };
    for (const listener of [...topic.onSubscribed]) {
      try {
        listener(info);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  _onEvent(frame) {
    const topic = this.topics.get(frame.topic);
    if (!topic) return;
    if (frame.offset !== null && frame.offset !== undefined) {
      const offset = parseOffset(frame.offset);
      if (offset === null || !isNewer(topic.last, offset)) return; // seen already
      topic.last = offset;
      topic.lastText = frame.offset;
    }
    if (frame.event === "presence.joined") topic.presence.add(frame.data.user_id);
    if (frame.event === "presence.left") topic.presence.delete(frame.data.user_id);
    for (const handler of [...topic.handlers]) {
      try {
        handler(frame);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  _emitError(name, frame) {
    const onError = this.options.onError;
    if (onError) onError(name, frame);
  }

  _transmit(entry) {
    clearTimeout(entry.timer);
    if (entry.attempts >= this.options.sendAttempts) {
      this._settle(entry.frame.client_msg_id, (e) => e.reject(new Error("no ack from the server")));
      return;
    }
    entry.attempts += 1;
    this._send(entry.frame);
    entry.timer = setTimeout(() => {
      if (this.state === "live") this._transmit(entry);
    }, this.options.ackTimeoutMs);
  }

  _settle(clientMsgId, settle) {
    const entry = this.pending.get(clientMsgId);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.pending.delete(clientMsgId);
    settle(entry);
  }

  _send(frame) {
    if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(frame));
  }

  // --- keepalive -----------------------------------------------------------------------------

  _armPing() {
    clearTimeout(this.timers.ping);
    this.timers.ping = setTimeout(() => {
      this._send({ type: "ping" });
      clearTimeout(this.timers.pong);
      this.timers.pong = setTimeout(() => {
        // Nothing came back: the connection is dead even if TCP has not noticed, and a
        // browser may take long to fire close on it: give up on it now.
        if (this.ws) this._lost(this.ws);
      }, this.options.pongTimeoutMs);
    }, this.options.pingIntervalMs);
  }

  _alive() {
    clearTimeout(this.timers.pong);
    this._armPing();
  }


  _clearTimers() {
    clearTimeout(this.timers.ping);
    clearTimeout(this.timers.pong);
    clearTimeout(this.timers.reconnect);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    for (const listener of [...this.stateListeners]) listener(state);
  }
}

/** Open a client: `connect({url, getToken, onResync?, onState?, onError?})`. */
export function connect(options) {
  return new TritonClient(options);
}
