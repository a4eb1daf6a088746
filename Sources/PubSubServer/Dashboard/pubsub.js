// pubsub.js: a dependency-free client of pubsub's native WebSocket protocol, for browsers and
// Node (docs/clients.md). Served by the server at /pubsub.js.
//
//   import { connect } from "/pubsub.js";
//   const client = await connect("/ws", { token });
//   await client.subscribe("orders", (event) => console.log(event.seq, event.payload), { last_n: 5 });
//   const ack = await client.publish("orders", { total: 12 });

/** An `error` frame from the server, or a request the client could not complete. */
export class PubSubError extends Error {
  constructor(code, message, frame) {
    super(message);
    this.name = "PubSubError";
    this.code = code;
    this.frame = frame;
  }
}

const defaults = {
  token: undefined,
  WebSocket: undefined,
  reconnect: true,
  initialDelay: 500,
  maxDelay: 15000,
  requestTimeout: 10000,
};

/** `/ws`, `http://host:4000` or `wss://host/ws` to the WebSocket URL, with the token as a query parameter. */
function socketURL(url, token) {
  const base = typeof location !== "undefined" ? location.href : undefined;
  const u = new URL(url, base);
  if (u.protocol === "http:") u.protocol = "ws:";
  if (u.protocol === "https:") u.protocol = "wss:";
  if (u.pathname === "/" || u.pathname === "") u.pathname = "/ws";
  if (token) u.searchParams.set("token", token);
  return u.toString();
}

/** NATS-style patterns over `.`-separated segments: `*` one segment, `>` one or more trailing. */
function isPattern(topic) {
  return topic.split(".").some((segment) => segment === "*" || segment === ">");
}

function matches(pattern, topic) {
  const p = pattern.split(".");
  const t = topic.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return t.length > i;
    if (i >= t.length || (p[i] !== "*" && p[i] !== t[i])) return false;
  }
  return p.length === t.length;
}

function deliver(handler, event) {
  try {
    handler(event);
  } catch (e) {
    // A handler's exception is reported, and does not stop the other handlers.
    setTimeout(() => { throw e; });
  }
}

export class PubSubClient {
  /**
   * @param {string} url  the server's `/ws` URL; relative URLs resolve against the page
   * @param {object} [options]  token, WebSocket (a constructor, for Node < 22), reconnect,
   *   initialDelay and maxDelay (ms, the reconnect backoff), requestTimeout (ms)
   */
  constructor(url, options = {}) {
    this.options = { ...defaults, ...options };
    this.url = url;
    this.clientId = null;
    this.state = "closed"; // closed | connecting | open | reconnecting
    this._WebSocket = this.options.WebSocket || globalThis.WebSocket;
    if (!this._WebSocket) throw new Error("no WebSocket: pass options.WebSocket (for example the 'ws' package)");
    this._ws = null;
    this._nextId = 0;
    this._pending = new Map(); // request_id -> { resolve, reject, timer }
    this._subscriptions = new Map(); // topic -> { handler, options, lastSeq, epoch }
    this._listeners = new Map();
    this._attempt = 0;
    this._retryTimer = null;
    this._closed = false;
  }

  /** Listens for `open`, `close`, `state`, `info`, `error` (frames with no request) and `gap`. */
  on(event, listener) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(listener);
    return () => this._listeners.get(event).delete(listener);
  }

  _emit(event, value) {
    for (const listener of this._listeners.get(event) || []) deliver(listener, value);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("state", state);
  }

  /**
   * Opens the connection; resolves once the server's `connected` frame arrives. Rejects when
   * this first attempt fails (a wrong URL or token); after that, lost connections are
   * reopened with backoff until `close()`.
   */
  connect() {
    this._closed = false;
    return new Promise((resolve, reject) => this._open(resolve, reject));
  }

  _open(resolve, reject) {
    this._setState(this._attempt === 0 && !this._everOpened ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new this._WebSocket(socketURL(this.url, this.options.token));
    } catch (e) {
      if (reject) {
        this._setState("closed");
        reject(e);
      } else {
        this._scheduleReconnect();
      }
      return;
    }
    this._ws = ws;
    let connected = false;
    ws.onmessage = (message) => {
      const text = typeof message.data === "string" ? message.data : String(message.data);
      let frame;
      try {
        frame = JSON.parse(text);
      } catch {
        return;
      }
      if (!connected && frame.type === "info" && frame.msg === "connected") {
        connected = true;
        this._everOpened = true;
        this._attempt = 0;
        this.clientId = frame.client_id;
        this._setState("open");
        this._resubscribe();
        this._emit("open", frame);
        if (resolve) resolve(this);
        resolve = reject = null;
        return;
      }
      this._receive(frame);
    };
    ws.onerror = () => {}; // the close event that follows says what happened
    ws.onclose = (event) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._failPending(new PubSubError("DISCONNECTED", "the connection closed before the server answered"));
      this._emit("close", { code: event.code, reason: event.reason });
      if (reject) {
        this._setState("closed");
        reject(new PubSubError("CONNECT_FAILED", `could not connect (close code ${event.code})`));
        return;
      }
      if (this._closed || !this.options.reconnect) this._setState("closed");
      else this._scheduleReconnect();
    };
  }

  /** Exponential backoff with jitter, so that clients dropped together do not return together. */
  _scheduleReconnect() {
    this._setState("reconnecting");
    const ceiling = Math.min(this.options.maxDelay, this.options.initialDelay * 2 ** this._attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this._attempt += 1;
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (!this._closed) this._open(null, null);
    }, delay);
  }

  /** Subscribes again after a reconnect, from the last seq seen in the epoch it belongs to. */
  _resubscribe() {
    for (const [topic, sub] of this._subscriptions) {
      // A pattern has no seq of its own to resume from (the server takes no `since` with one).
      const options = sub.pattern ? {} : sub.lastSeq != null ? { since: sub.lastSeq, epoch: sub.epoch } : sub.options;
      this._request({ type: "subscribe", topic, ...options }).then(
        (ack) => this._subscribed(topic, sub, ack, true),
        (error) => {
          // Refused now (the topic was deleted, the token lost the right): nothing more will come.
          if (error.code !== "DISCONNECTED" && this._subscriptions.get(topic) === sub) this._subscriptions.delete(topic);
          this._emit("error", error);
        },
      );
    }
  }

  _subscribed(topic, sub, ack, recovering) {
    if (this._subscriptions.get(topic) !== sub || sub.pattern) return;
    const epochChanged = sub.epoch != null && ack.epoch !== sub.epoch;
    if (epochChanged) sub.lastSeq = null;
    sub.epoch = ack.epoch;
    if (!ack.replayed) sub.lastSeq = ack.seq;
    if (recovering && ack.recovered === false) {
      this._emit("gap", { topic, epochChanged, epoch: ack.epoch, seq: ack.seq, replayed: ack.replayed });
    }
  }

  _receive(frame) {
    const pending = frame.request_id != null ? this._pending.get(frame.request_id) : undefined;
    if (pending) {
      this._pending.delete(frame.request_id);
      clearTimeout(pending.timer);
      if (frame.type === "error") pending.reject(new PubSubError(frame.error.code, frame.error.message, frame));
      else pending.resolve(frame);
      return;
    }
    switch (frame.type) {
      case "event": {
        const event = { topic: frame.topic, seq: frame.seq, id: frame.message.id, payload: frame.message.payload, ts: frame.ts };
        const sub = this._subscriptions.get(frame.topic);
        // The server never repeats a seq; this guards a replay after a reconnect that raced.
        if (sub && !sub.pattern && (sub.lastSeq == null || frame.seq > sub.lastSeq)) {
          sub.lastSeq = frame.seq;
          deliver(sub.handler, event);
        }
        for (const [pattern, other] of this._subscriptions) {
          if (other.pattern && matches(pattern, frame.topic)) deliver(other.handler, event);
        }
        return;
      }
      case "info":
        if (frame.msg === "topic_deleted") this._subscriptions.delete(frame.topic);
        this._emit("info", frame);
        return;
      case "error":
        this._emit("error", new PubSubError(frame.error.code, frame.error.message, frame));
        return;
      default:
        return;
    }
  }

  _request(frame, { expectReply = true } = {}) {
    if (!this._ws || this.state !== "open") {
      return Promise.reject(new PubSubError("DISCONNECTED", "not connected"));
    }
    if (!expectReply) {
      this._ws.send(JSON.stringify(frame));
      return Promise.resolve(undefined);
    }
    const id = `r${++this._nextId}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new PubSubError("TIMEOUT", `no answer to ${frame.type} within ${this.options.requestTimeout} ms`));
      }, this.options.requestTimeout);
      this._pending.set(id, { resolve, reject, timer });
      this._ws.send(JSON.stringify({ ...frame, request_id: id }));
    });
  }

  _failPending(error) {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this._pending.clear();
  }

  /**
   * Subscribes `handler` to `topic`; resolves with the server's `subscribed` ack.
   * `options`: `{ last_n }` to replay the last N retained messages first, or `{ since, epoch }`
   * to replay every retained message after seq `since`. After a reconnect the client
   * resubscribes with `since` = the last seq it delivered, so nothing is missed.
   */
  async subscribe(topic, handler, options = {}) {
    const sub = { handler, options: { ...options }, lastSeq: null, epoch: options.epoch ?? null, pattern: isPattern(topic) };
    if (options.since != null) sub.lastSeq = options.since;
    this._subscriptions.set(topic, sub);
    try {
      const ack = await this._request({ type: "subscribe", topic, ...options });
      this._subscribed(topic, sub, ack, false);
      return ack;
    } catch (error) {
      if (this._subscriptions.get(topic) === sub) this._subscriptions.delete(topic);
      throw error;
    }
  }

  /** Stops delivery for `topic`; resolves with the `unsubscribed` ack. */
  async unsubscribe(topic) {
    this._subscriptions.delete(topic);
    return this._request({ type: "unsubscribe", topic });
  }

  /**
   * Publishes `message` (any JSON value but null; `{id, payload}` names the message's id).
   * Resolves with the `published` ack (`seq`, `message_id`, `stats`), or with undefined when
   * `{ ack: false }`. A publish whose connection drops before the ack rejects with
   * `DISCONNECTED`: it may or may not have been published.
   */
  publish(topic, message, { ack = true } = {}) {
    if (ack) return this._request({ type: "publish", topic, message });
    return this._request({ type: "publish", topic, message, ack: false }, { expectReply: false });
  }

  /**
   * Replaces the connection's token before it expires (with `--auth token`); resolves with the
   * `refreshed` ack (`expires_at`). Later reconnects use the new token.
   */
  async refresh(token) {
    const ack = await this._request({ type: "refresh", token });
    this.options.token = token;
    return ack;
  }

  /** Round trip to the server; resolves with the time it took in milliseconds. */
  async ping() {
    const start = Date.now();
    await this._request({ type: "ping" });
    return Date.now() - start;
  }

  /** The topics this client is subscribed to. */
  get topics() {
    return [...this._subscriptions.keys()];
  }

  /** Closes the connection for good: no reconnect. */
  close() {
    this._closed = true;
    if (this._retryTimer) clearTimeout(this._retryTimer);
    this._retryTimer = null;
    const ws = this._ws;
    this._ws = null;
    this._failPending(new PubSubError("CLOSED", "the client was closed"));
    this._setState("closed");
    if (ws) ws.close(1000);
  }
}

/** `new PubSubClient(url, options)`, connected. */
export async function connect(url, options = {}) {
  const client = new PubSubClient(url, options);
  await client.connect();
  return client;
}

export default connect;
