"""Interoperability check: an unmodified third-party Phoenix Channels client from PyPI
(phoenix-channels-python-client) against a running pubsub server.

    python3 Tests/Interop/phoenix_client_roundtrip.py PORT [1|2]

Joins channel `pubsub`, subscribes to a topic, publishes, receives the `message` push,
unsubscribes, checks that a later REST broadcast is not delivered, and leaves. Prints
`phoenix interop ok (vsn N)` and exits 0 on success; exits 1 with a reason otherwise.
The client has no public API for custom channel events, so `subscribe`, `publish` and
`unsubscribe` are sent with its own serializer (`_protocol_handler.send_message`).
"""

import asyncio
import json
import sys
import urllib.request

from phoenix_channels_python_client import PHXChannelsClient, PhoenixChannelsProtocolVersion
from phoenix_channels_python_client.phx_messages import PHXMessage


def rest(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


async def roundtrip(port, vsn):
    topic = f"interop-v{vsn}"
    status, _ = rest(port, "POST", "/api/topics", {"name": topic})
    assert status in (201, 409), f"create topic: {status}"
    version = PhoenixChannelsProtocolVersion.V1 if vsn == 1 else PhoenixChannelsProtocolVersion.V2
    pushes = asyncio.Queue()

    async def on_message(message):
        await pushes.put(message)

    async with PHXChannelsClient(websocket_url=f"ws://127.0.0.1:{port}/ws/websocket", api_key="none",
                                 protocol_version=version) as client:
        await client.subscribe_to_topic("pubsub", on_message)  # phx_join, waits for the ok reply

        async def push(event, payload, ref):
            message = PHXMessage(topic="pubsub", event=event, payload=payload, ref=ref, join_ref=None)
            await client._protocol_handler.send_message(client.connection, message)

        async def next_delivery(timeout):
            while True:
                item = await asyncio.wait_for(pushes.get(), timeout)
                event = item["event"] if isinstance(item, dict) else str(item.event)
                payload = item["payload"] if isinstance(item, dict) else item.payload
                if event == "message":
                    return payload

        await push("subscribe", {"topic": topic, "request_id": "s1"}, "100")
        await asyncio.sleep(0.2)
        await push("publish", {"topic": topic, "message": {"cpu": 0.85, "mem": 0.65}}, "101")
        event = await next_delivery(5)
        assert event["type"] == "event" and event["topic"] == topic, event
        assert event["message"]["payload"] == {"cpu": 0.85, "mem": 0.65}, event

        await push("unsubscribe", {"topic": topic}, "102")
        await asyncio.sleep(0.2)
        status, body = rest(port, "POST", "/api/broadcast", {"topic": topic, "message": "after unsubscribe"})
        assert status == 200, body
        try:
            late = await next_delivery(1.0)
            raise AssertionError(f"received after unsubscribe: {late}")
        except asyncio.TimeoutError:
            pass
        await client.unsubscribe_from_topic("pubsub")  # phx_leave
    print(f"phoenix interop ok (vsn {vsn})")


def main():
    port = int(sys.argv[1])
    versions = [int(sys.argv[2])] if len(sys.argv) > 2 else [1, 2]
    try:
        for vsn in versions:
            asyncio.run(asyncio.wait_for(roundtrip(port, vsn), 30))
    except Exception as error:  # noqa: BLE001 - report any failure as one line
        print(f"phoenix interop FAILED: {type(error).__name__}: {error}")
        sys.exit(1)


if __name__ == "__main__":
    main()
