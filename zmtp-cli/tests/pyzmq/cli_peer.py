#!/usr/bin/env python3
"""A libzmq peer (through pyzmq, whose libzmq has CURVE) for tests/security.rs: the other
end of the zmtp tool's CURVE servers and clients.

One JSON argument says what to be:
  {"role": "push"  CURVE PUSH client: connects to "endpoint" with "server_public",
                   "client_public", "client_secret"; sends each message of "messages"
                   (lists of strings) once its handshake is done
         | "rep"   CURVE REP server bound to a free port on 127.0.0.1 with "server_public",
                   "server_secret"; answers "count" requests with ["re:", frames...];
                   with "allow_keys" (Z85 list), libzmq's ZAP authenticator
                   (zmq.auth.thread.ThreadAuthenticator) lets only those client keys in
         | "zap"   a ZAP handler (RFC 27) REP bound to a free port on 127.0.0.1, letting
                   in the CURVE keys of "allow_keys"; answers "count" requests}

It prints one line per fact, flushed, for the test to read:
  PORT n             bound (rep, zap)
  EVENT name value   a handshake event of the push client (value: the ZAP status for _AUTH)
  SEVENT name value  a handshake event of the rep server
  GOT f1|f2|...      a request (rep), frames hex-encoded
  ZAP key domain     the zap role answered a request for this client key, in this domain
  DONE               finished as asked
  FAIL why           something went wrong (exit status 1)
Everything times out after 10 s.
"""

import json
import os
import sys

import zmq
import zmq.auth.thread
import zmq.utils.monitor
import zmq.utils.z85

# The helpers the pyzmq peers share live with zmtp-std's.
sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "zmtp-std", "tests", "pyzmq")
)
from peerlib import HANDSHAKE_EVENTS, TIMEOUT_MS, Keys, event_name, fail, finish, say, watch  # noqa: E402

def socket(ctx, kind):
    s = ctx.socket(kind)
    s.linger = 2000
    s.rcvtimeo = TIMEOUT_MS
    s.sndtimeo = TIMEOUT_MS
    return s


def bind(s):
    say("PORT", s.bind_to_random_port("tcp://127.0.0.1"))


def push(ctx, cfg):
    s = socket(ctx, zmq.PUSH)
    s.curve_serverkey = cfg["server_public"].encode()
    s.curve_publickey = cfg["client_public"].encode()
    s.curve_secretkey = cfg["client_secret"].encode()
    # A refused client would retry; one attempt is what the test looks at.
    s.setsockopt(zmq.RECONNECT_IVL, 60_000)
    mon = s.get_monitor_socket(HANDSHAKE_EVENTS)
    mon.rcvtimeo = TIMEOUT_MS
    s.connect(cfg["endpoint"])
    try:
        ev = zmq.utils.monitor.recv_monitor_message(mon)
    except zmq.Again:
        fail("no handshake event")
    say("EVENT", event_name(ev), ev["value"])
    if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
        for m in cfg.get("messages", []):
            s.send_multipart([f.encode() for f in m])
    s.disable_monitor()
    finish(ctx, s, mon)
    say("DONE")


def rep(ctx, cfg):
    auth = None
    if "allow_keys" in cfg:
        auth = zmq.auth.thread.ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve_callback(domain="*", credentials_provider=Keys(cfg["allow_keys"]))
    s = socket(ctx, zmq.REP)
    s.curve_server = True
    s.curve_secretkey = cfg["server_secret"].encode()
    s.curve_publickey = cfg["server_public"].encode()
    watch(s, "SEVENT")
    bind(s)
    for _ in range(cfg.get("count", 1)):
        try:
            msg = s.recv_multipart()
        except zmq.Again:
            fail("no request")
        say("GOT", "|".join(f.hex() for f in msg))
        s.send_multipart([b"re:"] + msg)
    if auth:
        auth.stop()
    finish(ctx, s)
    say("DONE")


def zap(ctx, cfg):
    s = socket(ctx, zmq.REP)
    bind(s)
    keys = set(cfg.get("allow_keys", []))
    for _ in range(cfg.get("count", 1)):
        try:
            req = s.recv_multipart()
        except zmq.Again:
            fail("no ZAP request")
        version, rid, domain, _address, _identity, mechanism = req[:6]
        if version != b"1.0" or mechanism != b"CURVE":
            fail("ZAP request %r" % req[:6])
        key = zmq.utils.z85.encode(req[6]).decode()
        ok = key in keys
        status, text = (b"200", b"OK") if ok else (b"400", b"unknown key")
        s.send_multipart([b"1.0", rid, status, text, b"user" if ok else b"", b""])
        say("ZAP", key, domain.decode())
    finish(ctx, s)
    say("DONE")


def main():
    cfg = json.loads(sys.argv[1])
    if not zmq.has("curve"):
        fail("libzmq without CURVE")
    ctx = zmq.Context()
    {"push": push, "rep": rep, "zap": zap}[cfg["role"]](ctx, cfg)


if __name__ == "__main__":
    main()
