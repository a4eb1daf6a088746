// The dashboard: polls GET /api/stats every 2 s and drives the "Try it" panel with pubsub.js.
import { PubSubClient } from "/pubsub.js";

const POLL_MS = 2000;
// Rates are over the polls of the last 10 s: steady enough to read, recent enough to follow.
const RATE_SAMPLES = 5;
const LOG_LIMIT = 200;
const TOKEN_KEY = "pubsub.token";

const $ = (id) => document.getElementById(id);
const number = new Intl.NumberFormat("en-US");

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let pollTimer = null;
let pollGeneration = 0;
let samples = []; // the last polls, oldest first: { at, published, counts: Map(name -> message_count) }
const rows = new Map(); // topic name -> <tr>
let client = null;
const chips = new Map(); // topic -> chip element
const ackSeq = new Map(); // topic -> seq in its subscribe ack: events up to it are the replay

class HTTPError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(path, options = {}) {
  const headers = { ...(options.body ? { "Content-Type": "application/json" } : {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new HTTPError(response.status, body);
  return body;
}

function notice(text) {
  const element = $("notice");
  element.textContent = text || "";
  element.hidden = !text;
}

function authMessage(error) {
  if (error.status === 401) {
    return token
      ? `The server refused this token (401: ${error.message}). Enter a valid API key or JWT in the Token field.`
      : "This server requires a token (401). Enter an API key or a JWT with the admin right in the Token field.";
  }
  if (error.status === 403) {
    return `This token may not read the server's statistics (403: ${error.message}). Use an API key or a JWT with "admin": true to see them; the Try it panel works for the topics the token allows.`;
  }
  return null;
}

// MARK: formatting

function fmtCount(value) {
  return value == null ? "—" : number.format(value);
}

function fmtRate(value) {
  if (value == null) return "—";
  if (value === 0) return "0/s";
  return `${value < 10 ? value.toFixed(1) : number.format(Math.round(value))}/s`;
}

function fmtMs(value) {
  if (value == null || typeof value !== "number") return "—";
  if (value < 1) return `${value.toFixed(2)} ms`;
  if (value < 10) return `${value.toFixed(1)} ms`;
  return `${number.format(Math.round(value))} ms`;
}

function fmtLatency(latency) {
  if (!latency || (latency.p50 == null && latency.p99 == null)) return "—";
  return `${fmtMs(latency.p50)} / ${fmtMs(latency.p99)}`;
}

function fmtDuration(seconds) {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

function fmtBytes(bytes) {
  if (bytes == null) return "";
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]} resident`;
}

// p50 / p99 in the table; every figure the server gives in the cell's tooltip.
function latencyCell(latency) {
  const td = cell(fmtLatency(latency), "num");
  if (latency && latency.samples) {
    td.title = `p50 ${fmtMs(latency.p50)} · p90 ${fmtMs(latency.p90)} · p99 ${fmtMs(latency.p99)} · max ${fmtMs(latency.max)} · ${number.format(latency.samples)} deliveries in the last 60 s`;
  }
  return td;
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

// MARK: stats

// Each call starts a new chain of polls; an answer to an older one (from before a new token
// was entered) is dropped, so there is only ever one chain.
async function poll() {
  const generation = ++pollGeneration;
  clearTimeout(pollTimer);
  try {
    const stats = await api("/api/stats");
    if (generation !== pollGeneration) return;
    render(stats);
    notice(null);
  } catch (error) {
    if (generation !== pollGeneration) return;
    notice(authMessage(error) || `Could not load statistics: ${error.message}`);
    $("server").textContent = "statistics unavailable";
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

function render(stats) {
  const at = Date.parse(stats.system.timestamp);
  // A restarted server starts its clock again: its samples cannot be compared with the old ones.
  if (samples.length && at < samples[samples.length - 1].at) samples = [];
  // Per second since the oldest poll that has the figure (a new topic has a shorter window).
  // A count that went down belongs to a recreated topic: no rate until the old polls age out.
  const rate = (now, pick) => {
    const since = samples.find((sample) => pick(sample) != null);
    if (!since) return null;
    const elapsed = (at - since.at) / 1000;
    const before = pick(since);
    return elapsed > 0 && now >= before ? (now - before) / elapsed : null;
  };

  const server = $("server");
  server.textContent = "";
  const ok = document.createElement("span");
  ok.className = "ok";
  ok.textContent = "● live";
  server.append(ok, ` · ${stats.node.engine} engine · node ${stats.node.id}`);

  $("connections").textContent = fmtCount(stats.connections.current);
  $("connections-total").textContent = `${fmtCount(stats.connections.total_opened)} opened in total`;
  $("topic-count").textContent = fmtCount(stats.topics.total_count);
  $("subscriptions").textContent = `${fmtCount(stats.subscriptions.total_count)} subscriptions`;
  $("published").textContent = fmtCount(stats.messages.published);
  const total = rate(stats.messages.published, (sample) => sample.published);
  $("rate").textContent = total == null ? "\u00a0" : `at ${fmtRate(total)}`;
  $("delivered").textContent = fmtCount(stats.messages.delivered);
  $("dropped").textContent = `${fmtCount(stats.messages.dropped)} dropped`;
  $("uptime").textContent = fmtDuration(stats.system.uptime_seconds);
  $("memory").textContent = fmtBytes(stats.system.memory_rss_bytes);

  const counts = new Map();
  const seen = new Set();
  const details = [...stats.topics.details].sort((a, b) => a.name.localeCompare(b.name));
  const body = $("topic-rows");
  details.forEach((topic, index) => {
    seen.add(topic.name);
    counts.set(topic.name, topic.message_count);
    let row = rows.get(topic.name);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.topic = topic.name;
      row.className = samples.length ? "fresh" : "";
      row.title = "Use this topic in the Try it panel";
      row.addEventListener("click", () => {
        $("sub-topic").value = topic.name;
        $("pub-topic").value = topic.name;
      });
      rows.set(topic.name, row);
    }
    const topicRate = rate(topic.message_count, (sample) => sample.counts.get(topic.name));
    row.replaceChildren(
      cell(topic.name, "name"),
      cell(fmtCount(topic.subscriber_count), "num"),
      cell(fmtCount(topic.message_count), "num"),
      cell(fmtRate(topicRate), topicRate ? "num" : "num idle"),
      latencyCell(topic.latency_ms),
      cell(fmtCount(topic.dropped), topic.dropped > 0 ? "num dropped-some" : "num"),
    );
    if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
  });
  for (const [name, row] of rows) {
    if (!seen.has(name)) {
      row.remove();
      rows.delete(name);
    }
  }
  $("no-topics").hidden = details.length > 0;
  samples.push({ at, published: stats.messages.published, counts });
  if (samples.length > RATE_SAMPLES + 1) samples.shift();
}

// MARK: try it

function log(kind, topic, text, extra) {
  const item = document.createElement("li");
  item.className = kind;
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = new Date().toLocaleTimeString("en-GB", { hour12: false });
  const where = document.createElement("span");
  where.className = "topic";
  where.textContent = topic || "";
  const body = document.createElement("span");
  body.className = "body";
  body.textContent = text;
  if (extra) {
    const seq = document.createElement("span");
    seq.className = "seq";
    seq.textContent = ` ${extra}`;
    body.append(seq);
  }
  item.append(time, where, body);
  const list = $("log");
  list.prepend(item);
  while (list.children.length > LOG_LIMIT) list.lastElementChild.remove();
}

function setSocketState(state) {
  const pill = $("ws-state");
  pill.textContent = state === "open" ? "connected" : state;
  pill.className = `pill ${state}`;
}

function addChip(topic) {
  if (chips.has(topic)) return;
  const chip = document.createElement("span");
  chip.className = "chip";
  chip.dataset.topic = topic;
  chip.textContent = topic;
  const close = document.createElement("button");
  close.type = "button";
  close.title = `Unsubscribe from ${topic}`;
  close.textContent = "×";
  close.addEventListener("click", async () => {
    removeChip(topic);
    try {
      await client.unsubscribe(topic);
      log("info", topic, "unsubscribed");
    } catch (error) {
      log("error", topic, `${error.code || "error"}: ${error.message}`);
    }
  });
  chip.append(close);
  $("subscribed").append(chip);
  chips.set(topic, chip);
}

function removeChip(topic) {
  const chip = chips.get(topic);
  if (chip) chip.remove();
  chips.delete(topic);
}

async function connectSocket() {
  if (client) client.close();
  for (const topic of [...chips.keys()]) removeChip(topic);
  client = new PubSubClient("/ws", { token: token || undefined });
  client.on("state", setSocketState);
  client.on("info", (frame) => {
    if (frame.msg === "topic_deleted") {
      removeChip(frame.topic);
      log("info", frame.topic, "topic deleted");
    } else if (frame.msg === "server_shutdown") {
      log("info", "", "server shutting down; reconnecting");
    } else if (frame.msg === "messages_dropped") {
      log("info", frame.topic || "", `${frame.count} messages dropped (slow consumer)`);
    }
  });
  client.on("gap", (gap) => log("info", gap.topic, gap.epochChanged ? "topic was recreated: history restarted" : "some messages were lost while disconnected"));
  client.on("error", (error) => log("error", error.frame && error.frame.error && error.frame.error.topic, `${error.code}: ${error.message}`));
  try {
    await client.connect();
  } catch (error) {
    setSocketState("disconnected");
    log("error", "", token ? "could not connect over /ws: check the token" : "could not connect over /ws (this server may require a token)");
  }
}

async function subscribe(event) {
  event.preventDefault();
  const topic = $("sub-topic").value.trim();
  const lastN = $("sub-last-n").value.trim();
  if (!topic) return;
  const options = lastN !== "" ? { last_n: Number(lastN) } : {};
  ackSeq.delete(topic);
  try {
    const ack = await client.subscribe(topic, (message) => {
      const replay = ackSeq.has(topic) && message.seq <= ackSeq.get(topic);
      log(replay ? "event replay" : "event", message.topic, JSON.stringify(message.payload), `#${message.seq}`);
    }, options);
    ackSeq.set(topic, ack.seq);
    addChip(topic);
    if (!$("pub-topic").value) $("pub-topic").value = topic;
    log("info", topic, `subscribed (${ack.subscriber_count} subscriber${ack.subscriber_count === 1 ? "" : "s"}, seq ${ack.seq}, ${ack.replayed} replayed)`);
  } catch (error) {
    log("error", topic, `${error.code || "error"}: ${error.message}`);
  }
}

async function publish(event) {
  event.preventDefault();
  const topic = $("pub-topic").value.trim();
  const text = $("pub-message").value;
  if (!topic) return;
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    message = text; // not JSON: sent as a string
  }
  try {
    const ack = await client.publish(topic, message);
    const stats = ack.stats ? `, delivered to ${ack.stats.delivered}` : "";
    log("info", topic, `published #${ack.seq}${stats}`);
  } catch (error) {
    log("error", topic, `${error.code || "error"}: ${error.message}`);
  }
}

async function createTopic(event) {
  event.preventDefault();
  const input = $("create-name");
  const name = input.value.trim();
  if (!name) return;
  try {
    await api("/api/topics", { method: "POST", body: JSON.stringify({ name }) });
    input.value = "";
    notice(null);
    poll();
  } catch (error) {
    notice(authMessage(error) || `Could not create "${name}": ${error.message}`);
  }
}

function useToken(event) {
  event.preventDefault();
  token = $("token").value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  samples = [];
  poll();
  connectSocket();
}

$("token").value = token;
$("token-form").addEventListener("submit", useToken);
$("create-form").addEventListener("submit", createTopic);
$("subscribe-form").addEventListener("submit", subscribe);
$("publish-form").addEventListener("submit", publish);
$("clear-log").addEventListener("click", () => $("log").replaceChildren());
poll();
connectSocket();
