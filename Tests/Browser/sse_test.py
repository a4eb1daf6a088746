"""Server-Sent Events (GET /api/topics/{name}/events) in headless Chromium's own EventSource,
against a server the Swift test started on 127.0.0.1 (SSETests.swift).

    python3 sse_test.py PORT open
    python3 sse_test.py PORT auth API_KEY SUBSCRIBER_JWT

In a page of the server's origin, an EventSource gets the `subscribed` event, the replay
(`last_n`) and live messages as `message` events whose `lastEventId` is the seq and whose data
is the native event frame; deleting the topic brings an `info` event, and the EventSource's
reconnect then gets 404 and gives up (readyState CLOSED). `auth`: the JWT goes in the `token`
query parameter, as EventSource cannot set headers; without it the EventSource fails.

Prints "sse browser ok (MODE)" and exits 0, or fails with an assertion.
"""

import sys
import time

from dashboard_test import make_driver, rest, severe

# Runs in the page: opens the stream, publishes over REST (fetch) once subscribed, then deletes
# the topic and waits for the EventSource to give up. Bounded: every wait has a deadline.
STREAM = r"""
const [topic, token, adminToken, done] = arguments;
const auth = adminToken ? { Authorization: 'Bearer ' + adminToken } : {};
const events = [];
const fail = (why) => done({ error: why, events });
const timer = setTimeout(() => fail('timed out'), 20000);
const query = token ? '&token=' + encodeURIComponent(token) : '';
const source = new EventSource(`/api/topics/${topic}/events?last_n=2${query}`);
source.addEventListener('subscribed', async (e) => {
  events.push({ type: 'subscribed', data: JSON.parse(e.data) });
  const response = await fetch(`/api/topics/${topic}/messages`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...auth }, body: JSON.stringify({ message: { n: 3 } }),
  });
  if (!response.ok) fail('publish answered ' + response.status);
});
source.onmessage = async (e) => {
  events.push({ type: 'message', id: e.lastEventId, data: JSON.parse(e.data) });
  if (e.lastEventId === '3') {
    const response = await fetch(`/api/topics/${topic}`, { method: 'DELETE', headers: auth });
    if (!response.ok) fail('delete answered ' + response.status);
  }
};
source.addEventListener('info', (e) => events.push({ type: 'info', data: JSON.parse(e.data) }));
source.onerror = () => {
  // After the topic_deleted notice the stream ends; the reconnect gets 404 and the
  // EventSource gives up. Before it, an error is a failure.
  if (source.readyState === EventSource.CLOSED) {
    clearTimeout(timer);
    done({ events });
  }
};
"""

# Without a token the EventSource gets 401 and gives up at once.
REFUSED = r"""
const [topic, done] = arguments;
const source = new EventSource(`/api/topics/${topic}/events`);
const timer = setTimeout(() => done('timed out'), 10000);
source.onopen = () => { clearTimeout(timer); done('opened'); };
source.onerror = () => { if (source.readyState === EventSource.CLOSED) { clearTimeout(timer); done('closed'); } };
"""


def check_stream(driver, base, topic, token=None, admin=None):
    assert rest(base, "POST", "/api/topics", {"name": topic}, admin)[0] == 201
    for n in (1, 2):
        assert rest(base, "POST", f"/api/topics/{topic}/messages", {"message": {"n": n}}, admin)[0] == 200
    result = driver.execute_async_script(STREAM, topic, token, admin)
    assert "error" not in result, result
    events = result["events"]
    kinds = [event["type"] for event in events]
    assert kinds == ["subscribed", "message", "message", "message", "info"], events
    assert events[0]["data"]["type"] == "ack" and events[0]["data"]["replayed"] == 2, events[0]
    messages = events[1:4]
    assert [m["id"] for m in messages] == ["1", "2", "3"], messages
    assert [m["data"]["message"]["payload"] for m in messages] == [{"n": 1}, {"n": 2}, {"n": 3}], messages
    assert all(m["data"]["type"] == "event" and m["data"]["seq"] == int(m["id"]) for m in messages), messages
    assert events[4]["data"]["msg"] == "topic_deleted" and events[4]["data"]["topic"] == topic, events[4]


def main():
    port, mode = sys.argv[1], sys.argv[2]
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    driver = make_driver()
    driver.set_script_timeout(30)
    try:
        # A page of the server's origin (the streams and REST calls are then same-origin).
        driver.get(base + "/api/health")
        if mode == "open":
            check_stream(driver, base, "browser.sse")
        else:
            api_key, jwt = sys.argv[3], sys.argv[4]
            assert rest(base, "POST", "/api/topics", {"name": "secure"}, api_key)[0] == 201
            assert driver.execute_async_script(REFUSED, "secure") == "closed"
            rest(base, "DELETE", "/api/topics/secure", None, api_key)
            check_stream(driver, base, "secure", token=jwt, admin=api_key)
        assert not severe(driver) or all("/events" in entry["message"] for entry in severe(driver)), severe(driver)
    finally:
        driver.quit()
    print(f"sse browser ok ({mode}) in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
