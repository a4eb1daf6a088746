"""The dashboard at / and /pubsub.js in headless Chromium (selenium), against a server the Swift
test started on 127.0.0.1.

    python3 dashboard_test.py PORT open
    python3 dashboard_test.py PORT auth API_KEY SUBSCRIBER_JWT ANOTHER_SUBSCRIBER_JWT

`open`: a server without auth. The page loads with no console error, shows a topic created over
REST without a reload and drops a deleted one, subscribes (with last_n) and publishes from its
panel, and pubsub.js does a round trip in the page, with last_n replay and a reconnect that
recovers what was published while it was away. With PUBSUB_SCREENSHOT=PATH it adds some
traffic and saves a PNG of the page.

`auth`: a server with --auth token. Without a token the page says so; with the API key in its
token field it works, and the key survives a reload (sessionStorage); a JWT without the admin
right gets a clear 403 message while the panel still works; pubsub.js refreshes its token.

Prints "dashboard browser ok (MODE)" and exits 0, or fails with an assertion.
"""

import json
import os
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 8  # seconds for anything the page shows: a poll is every 2 s


def rest(base, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def make_driver():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver")
    # A missing browser is a failure, not a skip: scripts/install-test-deps.sh installs them.
    assert chromium and chromedriver, "chromium and chromedriver are needed (scripts/install-test-deps.sh)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1440,960", "--force-device-scale-factor=1", "--no-first-run",
                     "--disable-extensions", "--disable-background-networking"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium then does not try to download one.
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.set_page_load_timeout(15)
    driver.set_script_timeout(20)
    return driver


def wait(driver, condition, message, timeout=WAIT):
    # The page replaces table rows on every poll: an element found a moment ago may be gone.
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: condition(d), message)


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def row(driver, topic):
    """The cells' texts of the topic's row, read at once; None when it has none."""
    return driver.execute_script(
        "const r = document.querySelector(`#topic-rows tr[data-topic='${arguments[0]}']`);"
        "return r ? [...r.cells].map((c) => c.textContent) : null;", topic)


def log_items(driver, css="#log li"):
    return driver.execute_script("return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent);", css)


def fill(driver, element_id, value):
    element = driver.find_element(By.ID, element_id)
    element.clear()
    if value:
        element.send_keys(value)


def severe(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def panel_subscribe(driver, topic, last_n=""):
    fill(driver, "sub-topic", topic)
    fill(driver, "sub-last-n", last_n)
    driver.find_element(By.CSS_SELECTOR, "#subscribe-form button").click()
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f'#subscribed .chip[data-topic="{topic}"]'),
         f"no subscription chip for {topic}")


def panel_publish(driver, topic, message):
    fill(driver, "pub-topic", topic)
    fill(driver, "pub-message", message)
    driver.find_element(By.CSS_SELECTOR, "#publish-form button").click()


def wait_event(driver, needle, css="#log li.event"):
    wait(driver, lambda d: any(needle in item for item in log_items(d, css)), f"no event with {needle} in the panel")


# What pubsub.js must do, run in the page: publish, subscribe with last_n replay, a live event,
# then a dropped socket and a reconnect that recovers, with since + epoch, what was published
# while it was away, exactly once.
ROUNDTRIP = r"""
const [topic, done] = arguments;
(async () => {
  const { connect, PubSubClient } = await import('/pubsub.js');
  const sockets = [];
  const frames = [];
  let held = false;
  // The WebSocket option (for Node < 22) also lets the test reach the socket to drop it, and
  // hold the reconnect (a constructor that throws is a failed attempt, retried) until it has
  // published what the client must then recover, however slow the server (sanitizers).
  class Tracked extends WebSocket {
    constructor(...args) {
      if (held) throw new Error('held by the test');
      super(...args);
      sockets.push(this);
      this.addEventListener('message', (m) => frames.push(JSON.parse(m.data)));
    }
  }
  const until = async (check, what) => {
    for (let i = 0; i < 100; i++) { if (check()) return; await new Promise((r) => setTimeout(r, 50)); }
    throw new Error('timed out waiting for ' + what);
  };
  const client = await connect('/ws', { WebSocket: Tracked, initialDelay: 100, maxDelay: 400 });
  if (!(client instanceof PubSubClient)) throw new Error('connect did not give a PubSubClient');
  const acks = [];
  for (let n = 1; n <= 3; n++) acks.push(await client.publish(topic, { n }));
  const got = [];
  const subscribed = await client.subscribe(topic, (event) => got.push(event), { last_n: 2 });
  await until(() => got.length === 2, 'the last_n replay');
  const live = await client.publish(topic, { n: 4 });
  await until(() => got.length === 3, 'the live event');
  const states = [];
  client.on('state', (state) => states.push(state));
  const reconnecting = new Promise((resolve) => { const off = client.on('state', (s) => { if (s === 'reconnecting') { off(); resolve(); } }); });
  held = true;
  sockets[0].close();
  await reconnecting;
  const response = await fetch('/api/topics/' + topic + '/messages', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ message: { n: 5 } }),
  });
  if (response.status !== 200) throw new Error('REST publish: ' + response.status);
  held = false;
  await until(() => got.length === 4, 'the event published while disconnected');
  await client.publish(topic, { n: 6 });
  await until(() => got.length === 5, 'a live event after the reconnect');
  const resubscribe = frames.filter((f) => f.type === 'ack' && f.action === 'subscribed').pop();
  const gone = await client.unsubscribe(topic);
  client.close();
  done({
    publishSeqs: acks.map((a) => a.seq), liveSeq: live.seq, subscribedSeq: subscribed.seq, replayed: subscribed.replayed,
    seqs: got.map((e) => e.seq), payloads: got.map((e) => e.payload.n), sockets: sockets.length, states,
    resubscribe: { replayed: resubscribe.replayed, recovered: resubscribe.recovered }, unsubscribed: gone.action,
    state: client.state,
  });
})().catch((error) => done({ error: String(error && error.stack || error) }));
"""

# Some traffic for the screenshot: a few subscribers (pubsub.js clients in the page).
SUBSCRIBERS = r"""
const [topics, done] = arguments;
(async () => {
  const { connect } = await import('/pubsub.js');
  window.__extra = [];
  for (const [topic, count] of topics) {
    for (let i = 0; i < count; i++) {
      const client = await connect('/ws');
      await client.subscribe(topic, () => {});
      window.__extra.push(client);
    }
  }
  done('ok');
})().catch((error) => done('error: ' + error));
"""


def open_mode(driver, base):
    driver.get(base + "/")
    wait(driver, lambda d: text(d, "ws-state") == "connected", "the panel did not connect over /ws")
    wait(driver, lambda d: "live" in text(d, "server"), "the statistics did not load")
    assert driver.find_element(By.ID, "notice").is_displayed() is False

    # Topics come and go without a reload.
    for name in ("orders", "metrics.cpu", "scratch"):
        assert rest(base, "POST", "/api/topics", {"name": name})[0] == 201
    wait(driver, lambda d: row(d, "orders") and row(d, "scratch"), "a topic created over REST did not appear")
    assert rest(base, "DELETE", "/api/topics/scratch")[0] == 200
    wait(driver, lambda d: row(d, "scratch") is None, "a deleted topic stayed in the table")

    # Subscribe and publish from the panel; an event published over REST arrives too.
    panel_subscribe(driver, "orders")
    panel_publish(driver, "orders", '{"total": 12, "item": "espresso"}')
    wait_event(driver, '{"total":12,"item":"espresso"}')
    wait(driver, lambda d: any("published #1" in item for item in log_items(d, "#log li.info")), "no publish ack in the panel")
    assert rest(base, "POST", "/api/topics/orders/messages", {"message": {"total": 30}})[0] == 200
    wait_event(driver, '{"total":30}')

    # last_n from the panel: the replayed events are marked as such.
    for value in (0.41, 0.52, 0.63):
        assert rest(base, "POST", "/api/topics/metrics.cpu/messages", {"message": {"load": value}})[0] == 200
    panel_subscribe(driver, "metrics.cpu", "2")
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log li.replay")) == 2, "the last_n replay did not show")
    replays = log_items(driver, "#log li.replay")
    assert any('{"load":0.63}' in item for item in replays) and any('{"load":0.52}' in item for item in replays), replays
    assert not any("0.41" in item for item in log_items(driver)), "last_n 2 replayed more than 2"

    # The table counts what was published and who subscribes.
    wait(driver, lambda d: row(d, "orders")[2] == "2", "orders' message count did not update")
    wait(driver, lambda d: row(d, "metrics.cpu")[1] == "1", "metrics.cpu's subscriber count did not update")

    # pubsub.js itself.
    assert rest(base, "POST", "/api/topics", {"name": "roundtrip"})[0] == 201
    result = driver.execute_async_script(ROUNDTRIP, "roundtrip")
    assert "error" not in result, result
    assert result["publishSeqs"] == [1, 2, 3] and result["subscribedSeq"] == 3 and result["replayed"] == 2, result
    assert result["seqs"] == [2, 3, 4, 5, 6] and result["payloads"] == [2, 3, 4, 5, 6], result
    assert result["sockets"] == 2 and result["states"][:2] == ["reconnecting", "open"], result
    assert result["resubscribe"] == {"replayed": 1, "recovered": True}, result
    assert result["unsubscribed"] == "unsubscribed" and result["state"] == "closed", result

    screenshot = os.environ.get("PUBSUB_SCREENSHOT")
    if screenshot:
        take_screenshot(driver, base, screenshot)

    # The latency columns read `latency_ms` as GET /api/stats gives it once per-topic latency
    # is measured (SPEC 8); a figure is shown when present, "—" when null or absent. Made here
    # by rewriting the page's own answers, after the screenshot, so that it shows only what the
    # server said.
    driver.execute_script(LATENCY)
    wait(driver, lambda d: row(d, "orders")[4] == "0.42 ms / 3.1 ms", "a latency given was not shown")
    assert row(driver, "metrics.cpu")[4] == "—" and row(driver, "roundtrip")[4] == "—", (row(driver, "metrics.cpu"), row(driver, "roundtrip"))
    driver.execute_script("window.fetch = window.__fetch")

    errors = severe(driver)
    assert not errors, f"console errors: {errors}"


LATENCY = r"""
window.__fetch = window.fetch;
window.fetch = async (...args) => {
  const response = await window.__fetch(...args);
  if (!String(args[0]).endsWith('/api/stats')) return response;
  const stats = await response.json();
  for (const topic of stats.topics.details) {
    if (topic.name === 'orders') topic.latency_ms = { p50: 0.42, p90: 1.5, p99: 3.14, max: 12.7, samples: 31 };
    else if (topic.name === 'metrics.cpu') topic.latency_ms = { p50: null, p90: null, p99: null, max: null, samples: 0 };
    else delete topic.latency_ms;
  }
  return new Response(JSON.stringify(stats), { status: response.status, headers: response.headers });
};
"""


def take_screenshot(driver, base, path):
    for name in ("chat.lobby", "deploys", "payments.eu"):
        rest(base, "POST", "/api/topics", {"name": name})
    assert driver.execute_async_script(SUBSCRIBERS, [["chat.lobby", 4], ["orders", 2], ["payments.eu", 3], ["metrics.cpu", 1]]) == "ok"
    panel_subscribe(driver, "chat.lobby", "5")
    # Traffic at different rates while the page polls, so that the rates shown are live.
    stop = threading.Event()
    users = ["ana", "ben", "chloe", "dev"]

    def traffic():
        step = 0
        while not stop.is_set():
            step += 1
            rest(base, "POST", "/api/topics/metrics.cpu/messages", {"message": {"host": f"web-{step % 3 + 1}", "load": round(0.35 + (step % 7) / 20, 2)}})
            if step % 2 == 0:
                rest(base, "POST", "/api/topics/orders/messages", {"message": {"order_id": f"o-{1040 + step}", "total": round(9.5 + step % 13 * 3.25, 2)}})
            if step % 5 == 0:
                rest(base, "POST", "/api/topics/chat.lobby/messages", {"message": {"user": users[step % 4], "text": f"message {step}"}})
            if step % 9 == 0:
                rest(base, "POST", "/api/topics/payments.eu/messages", {"message": {"id": f"pay-{step}", "payload": {"amount_eur": 42.0 + step % 5}}})
            time.sleep(0.05)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        time.sleep(5)
        panel_publish(driver, "chat.lobby", '{"user": "ben", "text": "the dashboard is live"}')
        wait_event(driver, "the dashboard is live")
        time.sleep(2.5)
        driver.set_window_size(1440, 1140)
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        driver.save_screenshot(path)
    finally:
        stop.set()
        worker.join(timeout=5)


REFRESH = r"""
const [token, fresh, done] = arguments;
(async () => {
  const { connect } = await import('/pubsub.js');
  const client = await connect('/ws', { token });
  const ack = await client.refresh(fresh);
  const refused = await client.refresh('not-a-token').then(() => 'accepted', (error) => error.code);
  const still = await client.publish('secure', { refreshed: true });
  client.close();
  done({ action: ack.action, refused, still: still.action });
})().catch((error) => done({ error: String(error && error.stack || error) }));
"""


def auth_mode(driver, base, api_key, subscriber_jwt, refreshed_jwt):
    driver.get(base + "/")
    wait(driver, lambda d: d.find_element(By.ID, "notice").is_displayed(), "no message about the missing token")
    assert "requires a token" in text(driver, "notice"), text(driver, "notice")
    wait(driver, lambda d: any("could not connect" in item for item in log_items(d, "#log li.error")), "no message about the refused socket")
    # The browser itself reports the 401 answers (to /api/stats and the upgrade); nothing else.
    unexpected = [e for e in severe(driver) if " 401 " not in e["message"] and "WebSocket" not in e["message"]]
    assert not unexpected, f"console errors without a token: {unexpected}"

    # The API key in the token field: statistics, topics and the panel work.
    assert rest(base, "POST", "/api/topics", {"name": "secure"}, token=api_key)[0] == 201
    fill(driver, "token", api_key)
    driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
    wait(driver, lambda d: not d.find_element(By.ID, "notice").is_displayed(), "the notice stayed with a valid token")
    wait(driver, lambda d: row(d, "secure") is not None, "topics did not load with the token")
    wait(driver, lambda d: text(d, "ws-state") == "connected", "the panel did not connect with the token")
    panel_subscribe(driver, "secure")
    panel_publish(driver, "secure", '{"signed": true}')
    wait_event(driver, '{"signed":true}')

    # Kept for the session: a reload works at once.
    assert driver.execute_script("return sessionStorage.getItem('pubsub.token')") == api_key
    driver.refresh()
    wait(driver, lambda d: text(d, "ws-state") == "connected", "the panel did not reconnect after a reload")
    wait(driver, lambda d: row(d, "secure") is not None, "topics did not load after a reload")
    assert not driver.find_element(By.ID, "notice").is_displayed()
    errors = severe(driver)
    assert not errors, f"console errors with a valid token: {errors}"

    # A subscriber's JWT: no statistics (403, said plainly), the panel still works.
    fill(driver, "token", subscriber_jwt)
    driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
    wait(driver, lambda d: "403" in text(d, "notice") and "admin" in text(d, "notice"), "no clear message for a 403")
    wait(driver, lambda d: text(d, "ws-state") == "connected", "the panel did not connect with the JWT")
    panel_subscribe(driver, "secure")
    panel_publish(driver, "secure", '{"from": "jwt"}')
    wait_event(driver, '{"from":"jwt"}')
    # pubsub.js with a JWT: refresh replaces it; a bad one is refused and the old one stays.
    result = driver.execute_async_script(REFRESH, subscriber_jwt, refreshed_jwt)
    assert result == {"action": "refreshed", "refused": "UNAUTHORIZED", "still": "published"}, result
    # The browser reports the refused /api/stats calls itself; nothing else may be an error.
    unexpected = [e for e in severe(driver) if " 403 " not in e["message"]]
    assert not unexpected, f"console errors: {unexpected}"


def main():
    port, mode = sys.argv[1], sys.argv[2]
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    driver = make_driver()
    try:
        if mode == "open":
            open_mode(driver, base)
        else:
            auth_mode(driver, base, sys.argv[3], sys.argv[4], sys.argv[5])
    finally:
        driver.quit()
    print(f"dashboard browser ok ({mode}) in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
