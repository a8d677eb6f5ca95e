#!/usr/bin/env python3
"""A libzmq CURVE peer (through pyzmq) for tests/curve_pyzmq.rs.

One JSON argument says what to be:
  {"role": "server" | "client", "type": "ROUTER" | "REP" | "DEALER" | "REQ" | "PUB" | "SUB",
   "server_public": z85, "server_secret": z85, "client_public": z85, "client_secret": z85,
   "endpoint": "tcp://127.0.0.1:PORT" (client), "zap": "none" | "accept" | "reject",
   "count": messages to echo or send, "heartbeat_ms": 0 or libzmq's ZMQ_HEARTBEAT_IVL}

It prints one line per fact, flushed, for the test to read:
  PORT n          the server is bound (port 0 was asked for)
  ZAP mech key    the ZAP handler was asked (key in Z85) and answered
  GOT f1|f2|...   a message (frames hex-encoded)
  EVENT name val  a monitor event of the client socket
  DONE            finished as asked
  FAIL why        something went wrong (exit status 1)
Servers echo each request (REP: "echo" + the frames; ROUTER: routing id, "echo", the frames).
Clients send "msg", str(i) and expect the echo back. PUB publishes "news", str(i) until it
has published `count` messages after a subscriber asked for "news"; SUB subscribes to "news"
and receives `count` messages. Everything times out after 10 s.
"""

import json
import os
import sys
import threading
import time

import zmq
import zmq.utils.monitor
import zmq.utils.z85

# The helpers the pyzmq peers share live with zmtp-std's.
sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "zmtp-std", "tests", "pyzmq")
)
from peerlib import HANDSHAKE_EVENTS, TIMEOUT_MS, event_name, fail, finish, hexframes, say  # noqa: E402


def zap_handler(ctx, verdict, expected_key, ready):
    """RFC 27: answer one request; 200 if `verdict` is accept and the key is the expected one."""
    rep = ctx.socket(zmq.REP)
    rep.linger = 0
    rep.bind("inproc://zeromq.zap.01")
    ready.set()
    rep.rcvtimeo = TIMEOUT_MS
    try:
        req = rep.recv_multipart()
        # version, request id, domain, address, routing id, mechanism, credentials...
        mechanism, key = req[5], req[6]
        ok = verdict == "accept" and key == expected_key
        status, text = (b"200", b"OK") if ok else (b"400", b"denied")
        rep.send_multipart([b"1.0", req[1], status, text, b"user", b""])
        say("ZAP", mechanism.decode(), zmq.utils.z85.encode(key).decode())
    except zmq.Again:
        say("ZAP none")
    except zmq.ZMQError:
        pass  # ETERM: the server finished (its ctx.term() waits for this socket to close)
    finally:
        rep.close()


def main():
    cfg = json.loads(sys.argv[1])
    if not zmq.has("curve"):
        fail("libzmq without CURVE")
    ctx = zmq.Context()
    kind = getattr(zmq, cfg["type"])
    s = ctx.socket(kind)
    s.linger = 0
    s.rcvtimeo = TIMEOUT_MS
    s.sndtimeo = TIMEOUT_MS
    if cfg.get("heartbeat_ms"):
        s.setsockopt(zmq.HEARTBEAT_IVL, cfg["heartbeat_ms"])
        # PINGs as often as asked, but a generous silence before anyone gives up: on a busy
        # machine either process can stall for hundreds of milliseconds.
        s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
        s.setsockopt(zmq.HEARTBEAT_TTL, 5000)
    count = cfg.get("count", 1)

    if cfg["role"] == "server":
        zap = cfg.get("zap", "none")
        if zap != "none":
            ready = threading.Event()
            key = zmq.utils.z85.decode(cfg["client_public"])
            t = threading.Thread(target=zap_handler, args=(ctx, zap, key, ready), daemon=True)
            t.start()
            ready.wait()
        s.curve_server = True
        s.curve_secretkey = cfg["server_secret"].encode()
        s.curve_publickey = cfg["server_public"].encode()
        port = s.bind_to_random_port("tcp://127.0.0.1")
        say("PORT", port)
        if kind == zmq.PUB:
            # Publish until `count` messages went out after the first subscriber arrived
            # (PUB drops messages without subscribers; XPUB would tell, PUB cannot: keep
            # publishing until told enough by stdin being closed or the count reached).
            deadline = time.time() + TIMEOUT_MS / 1000
            i = 0
            while i < count and time.time() < deadline:
                s.send_multipart([b"news", str(i).encode()])
                s.send_multipart([b"other", str(i).encode()])
                i += 1
                time.sleep(0.05)
            say("DONE")
            return
        for _ in range(count):
            try:
                msg = s.recv_multipart()
            except zmq.Again:
                fail("no request")
            say("GOT", hexframes(msg))
            if kind == zmq.ROUTER:
                s.send_multipart([msg[0], b"echo"] + msg[1:])
            else:
                s.send_multipart([b"echo"] + msg)
        say("DONE")
        finish(ctx, s)  # the last reply goes out before the process does
        return

    # Client.
    s.curve_serverkey = cfg["server_public"].encode()
    s.curve_publickey = cfg["client_public"].encode()
    s.curve_secretkey = cfg["client_secret"].encode()
    mon = s.get_monitor_socket(HANDSHAKE_EVENTS)
    mon.rcvtimeo = TIMEOUT_MS
    s.setsockopt(zmq.RECONNECT_IVL, 60_000)
    if kind == zmq.SUB:
        s.setsockopt(zmq.SUBSCRIBE, b"news")
    s.connect(cfg["endpoint"])
    try:
        ev = zmq.utils.monitor.recv_monitor_message(mon)
    except zmq.Again:
        fail("no handshake event")
    say("EVENT", event_name(ev), ev["value"])
    if ev["event"] != zmq.EVENT_HANDSHAKE_SUCCEEDED:
        say("DONE")
        return
    if kind == zmq.SUB:
        for _ in range(count):
            try:
                say("GOT", hexframes(s.recv_multipart()))
            except zmq.Again:
                fail("no publication")
        say("DONE")
        return
    for i in range(count):
        frames = [b"msg", str(i).encode()]
        if kind == zmq.DEALER:
            frames = [b""] + frames
        s.send_multipart(frames)
        try:
            reply = s.recv_multipart()
        except zmq.Again:
            fail("no reply")
        say("GOT", hexframes(reply))
    say("DONE")


if __name__ == "__main__":
    main()
