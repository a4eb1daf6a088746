#!/usr/bin/env python3
"""../shared/bench-peers/run.py with one more system, `ours-noack`: pubsub with `"ack": false`.

    python3 scripts/bench-peers-noack.py --system ours-noack --port 8080 --pid $SRV --scenario S4 ...

The harness's `ours` publisher asks for an ack per publish and uses it as flow control, so
its client decodes two frames per message. `ours-noack` publishes with `"ack": false`
(SPEC 2.1) and gets its flow control the way the harness does for NATS: every barrier is a
`{"type":"ping"}`, answered by one `pong` frame, as NATS's PING by PONG. Each publish frame is
the same bytes (no request_id), as NATS's are. Everything else (scenarios, pinning,
measurement, output) is the harness's own, unchanged; the other systems stay available.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.environ.get("BENCH_PEERS", os.path.join(HERE, "..", "..", "shared", "bench-peers"))
sys.path.insert(0, os.path.abspath(PEERS))

import drivers  # noqa: E402
import run  # noqa: E402


class OursNoAckPub(drivers.OursPub):
    const_wire = True

    def __init__(self, topic):
        super().__init__(topic)
        self.barrier_msg = b'{"type":"ping"}'
        self.barrier_frame = drivers.ws_frame(self.barrier_msg, 0x1)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type != drivers.TEXT:
            if frame.msg_type == drivers.WSMsgType.CLOSE:
                self.closed = True
            return
        p = frame.get_payload_as_bytes()
        if b'"pong"' in p:
            self.acks += 1
            self._wake()
        elif b'"error"' in p:
            self.errors += 1   # errors are still sent for unacknowledged publishes

    def wire(self, payload, seq):
        return drivers.ws_frame(self.prefix + payload + b',"ack":false}', 0x1)


class OursNoAck(drivers.Ours):
    name = "ours-noack"

    async def open_pub(self):
        pub = await self._connect(lambda: OursNoAckPub(self.topic), 0)
        await drivers.asyncio.wait_for(pub.ready_fut, 30)
        return pub


drivers.DRIVERS[OursNoAck.name] = OursNoAck

if __name__ == "__main__":
    sys.exit(run.main())
